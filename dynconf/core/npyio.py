"""Reading arrays safely: one place to import the readers from.

- npyfile.py: one .npy file (read_npy, open_npy, ArrayFile), headers checked before data;
- npz.py: .npz archives, every member's header checked before anything is inflated;
- outputs_file.py: the outputs files users import (read_outputs_file, import_limit);
- safeopen.py: the regular-file check every reader goes through (open_regular).
"""

from __future__ import annotations

from dynconf.core.npyfile import (  # noqa: F401
    READ_CHUNK_BYTES,
    ArrayFile,
    _prod,
    _read_header,
    _read_into,
    fortran_refusal,
    open_npy,
    read_npy,
)
from dynconf.core.outputs_file import (  # noqa: F401
    MAX_IMPORT_BYTES,
    import_limit,
    read_outputs_file,
)
from dynconf.core.safeopen import is_regular_file, open_regular  # noqa: F401
