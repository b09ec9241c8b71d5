"""`python -m numpro`: see numpro.cli."""

from numpro.cli import main

raise SystemExit(main())
