"""The tests never touch the user's machine (tests/conftest.py): HOME, the XDG directories and the
state directory are this session's own, for the tests and the CLI subprocesses they run, and no
inherited S3PUMP_*/WEED_* variable leads to the user's embedded server or data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import platformdirs

from s3pump.devserver import embedded_dir
from s3pump.session import state_dir
from tests import conftest


def test_home_xdg_and_state_are_this_sessions_own(isolated_home: Path, tmp_path_factory) -> None:
    for name in ("HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        assert Path(os.environ[name]).is_relative_to(isolated_home), name
    # the session's, or (tests/unit/conftest.py, tests/faults/conftest.py) one of this test's own
    state = Path(os.environ["S3PUMP_STATE_DIR"])
    assert state.is_relative_to(isolated_home) or state.is_relative_to(tmp_path_factory.getbasetemp()), state
    assert not [k for k in os.environ if k.startswith("WEED_") or k == "S3PUMP_EMBEDDED_DIR"]
    # where s3pump would write: failed-lists and journals, and the embedded server's data and server.json
    for where in (embedded_dir(), Path(platformdirs.user_data_dir("s3pump")),
                  Path(platformdirs.user_state_dir("s3pump")), Path.home()):
        assert where.is_relative_to(isolated_home), where
    # the user's directories were listed before the session (in each process: the xdist controller's
    # check is of the user's own), and none of them is this session's
    assert conftest._user_dirs_before
    assert not any(Path(d).is_relative_to(isolated_home) for d in conftest._user_dirs_before)


def test_a_cli_subprocess_sees_the_same(isolated_home: Path) -> None:
    code = ("import json, os; from s3pump.session import state_dir; from s3pump.devserver import embedded_dir; "
            "print(json.dumps([os.environ['HOME'], str(state_dir()), str(embedded_dir())]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60).stdout
    home, state, embedded = map(Path, json.loads(out))
    assert home.is_relative_to(isolated_home) and embedded.is_relative_to(isolated_home)
    assert state == state_dir()
