"""``python -m fers_qgis.cli``: the FERS command line."""
import sys

from .main import main

sys.exit(main())
