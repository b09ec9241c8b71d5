"""`python -m numpro.training`: see numpro.training.train."""

from numpro.training.train import main

raise SystemExit(main())
