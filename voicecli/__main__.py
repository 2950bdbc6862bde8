"""Allows `python -m voicecli`."""

from voicecli.cli import main


raise SystemExit(main())
