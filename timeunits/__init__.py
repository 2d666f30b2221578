"""Time units shared by every package: the stack keeps time as integer nanoseconds UTC since 1970.

A leaf below everything (it imports nothing), so that ``digitizer`` and ``gci_link``, which import
nothing else of ours, can share it with the rest instead of each spelling the constants again.
"""

from typing import Final

NS_PER_US: Final = 1_000
NS_PER_MS: Final = 1_000_000
NS_PER_S: Final = 1_000_000_000
S_PER_DAY: Final = 86_400
NS_PER_DAY: Final = S_PER_DAY * NS_PER_S
