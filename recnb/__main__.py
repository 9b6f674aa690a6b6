import sys

from recnb.cli import main
from recnb.models.devices import keep_freed_memory

keep_freed_memory()   # a command that trains or scores reuses freed memory instead of faulting it in again
sys.exit(main())
