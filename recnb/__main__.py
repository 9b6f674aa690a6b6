import sys

from recnb.cli import main

sys.exit(main())
