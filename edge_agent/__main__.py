"""`python -m edge_agent` is `prognos-edge`."""

import sys

from edge_agent._cli import main

sys.exit(main())
