"""voicecli: a terminal voice-chat client for realtime speech models.

This module only carries the version; importing it loads nothing heavy.
"""

__version__ = "0.1.0"
