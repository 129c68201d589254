"""edalab.faststream without FastStream installed: one clear ImportError naming the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_without_faststream_the_import_error_says_which_extra_to_install() -> None:
    """Without faststream, `import edalab.faststream` says: pip install "edalab[faststream]"."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["faststream"] = None  # as if it were not installed
        import edalab  # the library itself needs no FastStream
        try:
            import edalab.faststream
        except ImportError as err:
            print(err)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'pip install "edalab[faststream]"' in out.stdout
