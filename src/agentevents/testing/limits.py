"""The numbers behind promises the features state in words.

Where a scenario says "a message small enough for a chat screen" or "the gateway has kept no
memory", the figure it is held to lives here, once, and each check records the measured value
against it (``figures.record_figure``). docs/specification.md names them per test.
"""

from __future__ import annotations

# T065: the attached file of figures, its parsed size, and what one chat message may carry.
LARGE_FILE_FIGURES = 11000
LARGE_RESULT_MIN_KB = 200
CHAT_MESSAGE_LIMIT_KB = 64

# T019: how long the gateways get to give back what visitors used, and the file descriptors a
# database pool may reopen in the background (a handful is not a leak of 200).
SETTLE_S = 15
FD_SLACK = 3

# T030: how much the gateway may grow while it streams the thoughts (allocator noise, not a leak).
STREAM_GROWTH_LIMIT_MB = 30

# T111: how far above its resting memory a gateway may stay once the crowd has left, and the
# load the crowd's runs must carry for a flat memory curve to prove anything.
CROWD_MEMORY_MARGIN_MB = 10
CROWD_MIN_EVENTS = 8000
