"""`python -m cloud` is `prognos`."""

import sys

from cloud._cli import main

sys.exit(main())
