"""`python -m haproxy_py` is the same as the `haproxy-py` command."""

import sys

from haproxy_py.cli import main

sys.exit(main())
