"""``python -m runbatch.runtime``: the entrypoint of every runtime process and container."""

import sys

from runbatch.runtime.main import main

sys.exit(main())
