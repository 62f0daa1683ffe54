"""Set-up shared by every test folder."""

from __future__ import annotations

import signal

# A non-interactive shell starts a background job (``cmd &``) with SIGINT ignored, and an
# ignored signal stays ignored across fork and exec: a suite started that way (as some CI
# runners and scripts do) would run every lsfix it spawns deaf to Ctrl-C, and the interrupt
# tests (tests/hardening/test_kill.py, tests/extract/test_resume_kill.py) would fail for a
# reason that is not lsfix's. lsfix itself keeps the Unix convention (an ignored SIGINT stays
# ignored); the tests want the default, so this process gets Python's handler back, and a
# handler (unlike SIG_IGN) is reset to the default in every process it starts.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
