import sys

from lm_zoo.cli import main

sys.exit(main())
