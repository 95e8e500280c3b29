// The explorer view hosted in a notebook (anywidget; dynconf/widget.py). The payload is the
// widget's "payload" bytes; C is the "threshold" traitlet, set on release and adopted when
// Python sets it; for a C off the slider's grid Python sends its exits as "override".
// Plotly.js runs inlined in front of this module (dynconf/widget.py puts it there), which
// keeps it as the module's Plotly and gives window.Plotly back as it was, so a notebook's own
// Plotly (the full bundle) keeps working.

function gridIndex(c, steps) {
  const g = Math.round(c * steps);
  return g >= 0 && g <= steps && g / steps === c ? g : null;
}

function render({model, el}) {
  el.innerHTML = DYNCONF_VIEW_HTML;
  // Keys inside the explorer are its own (arrows move C): the notebook's shortcuts and key
  // handlers around the output never see them.
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  el.addEventListener("keydown", ev => ev.stopPropagation());
  const dv = model.get("payload");
  const bytes = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  const entry = Promise.resolve({bytes, decoded: null});
  let ext = 0;
  const host = {
    payload: () => entry,
    plotly: () => Promise.resolve(),
    report: c => { model.set("threshold", c); model.save_changes(); },
    pick: i => { model.set("picked", i); model.save_changes(); },
    rendered: () => { el.dataset.rendered = view.root.dataset.rendered; },
  };
  const view = new DynconfView.Explorer(el.querySelector(".dci-root"), host);
  view.root.querySelector(".dci-pick-hint").textContent =
    "Click a point: its position is the widget's `picked`.";
  const adopt = () => {
    const c = model.get("threshold"), steps = model.get("steps");
    if (c === view.c && view.p) return;  // the echo of this view's own report
    const g = gridIndex(c, steps), o = model.get("override");
    if (g === null && !(o && o.c === c)) return;  // Python's exits for this C are on the way
    view.reported = c;
    view.receive({pid: model.get("pid"), c, g, ext: ++ext, override: g === null ? o : null});
  };
  model.on("change:threshold", adopt);
  model.on("change:override", adopt);
  adopt();
  return () => { model.off("change:threshold", adopt); model.off("change:override", adopt); };
}

export default {render};
