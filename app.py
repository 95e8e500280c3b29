"""``streamlit run app.py`` from a clone; installed, the same app is ``dynconf app``."""

from dynconf.app.main import main

main()
