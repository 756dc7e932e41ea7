import sys

from leadflow.devstack.stack import main

sys.exit(main())
