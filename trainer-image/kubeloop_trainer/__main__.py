import sys

from kubeloop_trainer.cli import main

sys.exit(main())
