"""A child process for the supervisor's tests: `exit <status>` ends at once, `sleep` runs until signalled."""

import sys
import time

if __name__ == "__main__":
    if sys.argv[1] == "exit":
        raise SystemExit(int(sys.argv[2]))
    while True:
        time.sleep(1)
