import sys

from kubeloop_demo.cli import main

sys.exit(main())
