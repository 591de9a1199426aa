import os
import sys

from .shared.client import with_huge_pages

#: Commands that run the model in this process: started again at once with malloc in huge pages
#: (glibc reads its tunables only at start; see :func:`~.shared.client.with_huge_pages`).
MODEL_COMMANDS = ("generate", "bench", "serve")

if len(sys.argv) > 1 and sys.argv[1] in MODEL_COMMANDS:
    env = with_huge_pages(dict(os.environ))
    if sys.executable and env.get("GLIBC_TUNABLES") != os.environ.get("GLIBC_TUNABLES"):
        try:
            os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
        except OSError:
            pass  # go on with small pages

from .cli import main  # noqa: E402

sys.exit(main())
