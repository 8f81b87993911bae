"""A workshop room on one server: a real JupyterHub (the recipe in docs/hub, configurable-http-proxy
from npm) with three local Unix learners running a lab at the same time through their own
servers; each learner's work their own; the instructor's view of the room (docs/HUB.md)."""
import asyncio
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import SESSION_DIRS
from labkit.errors import LabkitError
from labkit.room import learners, seats
from labkit.serve import peers

REPO = Path(__file__).resolve().parents[1]
HUB_PROXY = REPO / "docs" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
LEARNERS = ("lkt-ana", "lkt-ben", "lkt-chen")
LAB = "food-resnet50"   # the quickest lab of the quick profile
RESULTS = REPO / "bench" / "results" / "hub"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_to_all(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def system_python() -> str | None:
    """A Python of this version that every user may run (not a pyenv one in root's home)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        if os.path.exists(candidate) and open_to_all(Path(candidate).resolve()):
            return candidate
    return None


def other_users_cannot_run_labkit() -> str | None:
    if os.getuid() != 0:
        return "creates Unix accounts for the learners and runs JupyterHub as root: run the suite as root"
    if not system_python():
        return f"no python{sys.version_info.major}.{sys.version_info.minor} that other users may run (/usr/bin)"
    if not open_to_all(Path(sysconfig.get_paths()["purelib"])) or not open_to_all(REPO / "labkit"):
        return f"labkit's checkout or environment ({sys.prefix}) is closed to other users"
    return None


needs_other_users = pytest.mark.skipif(bool(other_users_cannot_run_labkit()),
                                       reason=other_users_cannot_run_labkit() or "")


def as_user(name: str, *argv: str, env: dict | None = None, check=True) -> subprocess.CompletedProcess:
    user = pwd.getpwnam(name)
    return subprocess.run(argv, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          cwd=user.pw_dir if os.path.isdir(user.pw_dir) else "/",
                          env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin", **(env or {})},
                          capture_output=True, text=True, check=check, timeout=300)


# --- the parts, on their own ----------------------------------------------------------------

def test_the_kernels_socket_table_is_read_as_linux_writes_it():
    assert peers.endpoint("0100007F:1F90") == ("127.0.0.1", 8080)
    assert peers.endpoint("0000000000000000FFFF00000100007F:0050") == ("127.0.0.1", 80)   # IPv4 in IPv6
    assert peers.endpoint("00000000000000000000000001000000:0016") == ("::1", 22)


def test_the_peer_of_a_local_connection_is_its_owner():
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, address = server.accept()
        with client, accepted:
            assert peers.uid_of_peer(address, server.getsockname()) == os.getuid()
            assert peers.uid_of_peer(("127.0.0.1", 1), server.getsockname()) is None   # no such connection
            assert peers.uid_of_peer(("testclient", 50000), server.getsockname()) is None


def test_learners_get_cores_in_turn_and_share_when_outnumbered():
    cores = seats.Cores(1, cores=[0, 1])
    assert [cores.of(n) for n in ("ana", "ben", "chen", "ana")] == [[0], [1], [0], [0]]
    assert cores.pinned("ben", ["jupyterhub-singleuser"]) == ["taskset", "--cpu-list", "1", "jupyterhub-singleuser"]
    assert seats.Cores(2, cores=[0, 1, 2]).of("x") == [0, 1] and seats.Cores(8, cores=[0, 1]).of("x") == [0, 1]


def test_a_seat_gets_a_private_workspace_and_lessons_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / seats.WORKSPACE))
    seats.prepare(REPO / "notebooks")
    copy = tmp_path / seats.LESSONS
    assert sorted(p.name for p in copy.glob("*.ipynb"))[0] == "01_data_prep.ipynb" and not (copy / "zh-CN").exists()
    for folder in (tmp_path / seats.WORKSPACE, copy):
        assert folder.stat().st_mode & 0o777 == 0o700
    assert min(p.stat().st_mtime for p in copy.glob("*.ipynb")) > time.time() - 60   # dated now, not the repo's dates
    (copy / "01_data_prep.ipynb").write_text("the learner's own")
    seats.prepare(REPO / "notebooks")   # the next login keeps the learner's copy
    assert (copy / "01_data_prep.ipynb").read_text() == "the learner's own"


def test_a_new_workspace_is_its_owners_alone(tmp_path, monkeypatch):
    from labkit import workspace

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "deep" / "workspace"))
    assert (workspace.home().stat().st_mode & 0o777) == 0o700


@needs_other_users
def test_a_workspace_that_is_not_yours_is_a_clear_error(learner_env):
    shared = Path(tempfile.mkdtemp(prefix="labkit-theirs-"))   # a folder open to all (pytest's are not)
    SESSION_DIRS.append(str(shared))
    shared.chmod(0o755)
    folder = shared / "theirs"
    folder.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    answer = subprocess.run([learner_env / "bin" / "labkit", "status"], env={**os.environ, "LABKIT_HOME": str(folder)},
                            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], capture_output=True, text=True)
    shutil.rmtree(shared)
    assert answer.returncode == 1 and "is not yours to use" in answer.stderr and "Traceback" not in answer.stderr


def test_the_room_reads_a_workspace_and_says_why_it_cannot(ws, tmp_path):
    from labkit import workspace

    workspace.home()
    (entry,) = learners.room(str(ws))
    assert entry["learner"] == pwd.getpwuid(os.getuid()).pw_name
    assert (entry["stage"], entry["jobs"], entry["running"], entry["last_error"]) == (None, [], [], None)
    with pytest.raises(LabkitError, match="could not be read within 0.5 s"):
        learners.as_owner(ws, lambda: time.sleep(30), timeout=0.5)
    with pytest.raises(LabkitError, match="ZeroDivisionError"):
        learners.as_owner(ws, lambda: 1 / 0)
    with pytest.raises(LabkitError, match="no user 'no-such-learner'"):
        learners.give("no-such-learner", "x.tar.gz", tmp_path)
    me = pwd.getpwuid(os.getuid()).pw_name
    assert learners.workspace_of(me, str(ws.parent / "work*")) == ws
    with pytest.raises(LabkitError, match=f"{me} has no workspace among"):
        learners.workspace_of(me, str(tmp_path / "nothing-*"))
    with pytest.raises(LabkitError, match="no pack 'x.tar.gz'"):
        learners.give(me, "x.tar.gz", tmp_path, str(ws.parent / "work*"))
    assert learners.room(str(tmp_path / "nothing-*")) == []


def test_the_rooms_page_reads_the_room_once_a_refresh(monkeypatch):
    from labkit.room import page

    reads, now = [], [100.0]
    monkeypatch.setattr(learners, "room", lambda homes: reads.append(homes) or [{"learner": f"read {len(reads)}"}])
    room = page.Reading(clock=lambda: now[0])
    assert room() == room() == [{"learner": "read 1"}]   # two pages open: one reading
    now[0] += page.REFRESH_S
    assert room() == [{"learner": "read 2"}] and len(reads) == 2


@pytest.mark.skipif(os.getuid() != 0, reason="reads another user's workspace: run as root")
def test_the_room_is_read_with_a_python_the_learners_can_run():
    """As the learner, the reading process imports more of the standard library: from a Python in
    root's home it could not, and says so instead of failing half-way."""
    shared = Path(tempfile.mkdtemp(prefix="labkit-room-"))
    SESSION_DIRS.append(str(shared))
    try:
        shared.chmod(0o755)
        (shared / "ws").mkdir(mode=0o700)
        os.chown(shared / "ws", pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
        (entry,) = learners.room(str(shared / "ws"))
        assert entry["learner"] == "nobody"
        if seats.closed_to_others(Path(sys.executable)):
            assert "which nobody may not enter" in entry["error"], entry
        else:
            assert entry["stage"] is None and entry["disk_bytes"] == 0, entry
    finally:
        shutil.rmtree(shared)


@needs_other_users
def test_under_a_hub_a_service_answers_only_its_owner(models, monkeypatch):
    """The owner's kernel and Jupyter server (whose proxy the hub authenticated) get answers;
    another user on the same server gets 403, whatever port they find."""
    from labkit.serve import services

    monkeypatch.setenv("LABKIT_HOME", str(models))
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/root/")
    rec = services.deploy("flowers@0.0.1", name="mine", log=lambda *_: None)
    try:
        assert rec["access"] == "owner"
        assert httpx.get(f"{rec['url']}/health", timeout=10).json() == {"health": "true"}
        # as through Jupyter's proxy, which passes the hub's X-Forwarded-For on: the socket decides
        forwarded = httpx.get(f"{rec['url']}/health", headers={"X-Forwarded-For": "10.1.2.3"}, timeout=10)
        assert forwarded.json() == {"health": "true"}
        probe = ("import urllib.request, urllib.error, sys\n"
                 "try: urllib.request.urlopen(sys.argv[1])\n"
                 "except urllib.error.HTTPError as e: print(e.code, e.read().decode())\n")
        refused = as_user("nobody", system_python(), "-c", probe, f"{rec['url']}/health").stdout
        assert refused.startswith("403 ") and "answers only the user who deployed it" in refused
        refused = as_user("nobody", system_python(), "-c", probe, f"{rec['url']}/v2/health/ready").stdout
        assert refused.startswith("403 ") and json.loads(refused[4:])["error"]   # each protocol's error body
    finally:
        services.stop("mine")


@needs_other_users
def test_under_a_hub_tensorboard_answers_only_its_owner(jobs, monkeypatch):
    from labkit import train

    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/root/")
    rec = train.tensorboard(["rn"], log=lambda *_: None)
    try:
        assert httpx.get(rec["url"] + "data/runs", timeout=30).status_code == 200
        probe = ("import urllib.request, urllib.error, sys\n"
                 "try: urllib.request.urlopen(sys.argv[1])\n"
                 "except urllib.error.HTTPError as e: print(e.code, e.read().decode())\n")
        refused = as_user("nobody", system_python(), "-c", probe, rec["url"] + "data/runs").stdout
        assert refused.startswith("403 ") and "answers only the user who started it" in refused
    finally:
        train.stop_tensorboard()


# --- a real JupyterHub, three learners at once -----------------------------------------------------

@pytest.fixture(scope="module")
def learner_env():
    """labkit's environment as learners run it: the system's Python over this environment's
    packages (a venv whose Python is in root's home is closed to them; on a real server,
    `make install PYTHON=/usr/bin/python3.11` gives one that is open)."""
    folder = Path(tempfile.mkdtemp(prefix="labkit-learner-env-"))
    SESSION_DIRS.append(str(folder))
    folder.chmod(0o755)
    subprocess.run([system_python(), "-m", "venv", "--without-pip", str(folder)], check=True)
    site = Path(subprocess.run([folder / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "labkit-env.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    for shared in ("share", "etc"):   # JupyterLab's assets, jupyter-server-proxy's server extension
        (folder / shared).symlink_to(Path(sys.prefix) / shared)
    ours = f"#!{Path(sys.prefix) / 'bin'}/"
    for script in Path(sys.prefix, "bin").iterdir():
        if script.is_file() and not script.is_symlink() and not (folder / "bin" / script.name).exists():
            text = script.read_bytes()
            if text.startswith(ours.encode()):
                target = folder / "bin" / script.name
                target.write_bytes(f"#!{folder / 'bin' / 'python'}".encode() + text[text.index(b"\n"):])
                target.chmod(0o755)
    assert seats.unusable_environment(folder) is None
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not system_python(), reason="no system Python to make the learners' environment from")
def test_the_recipe_gives_each_learner_a_workspace_lessons_cores_culling_and_the_room(learner_env, monkeypatch, tmp_path):
    from traitlets.config import PyFileConfigLoader

    monkeypatch.setenv("LABKIT_DIR", str(REPO))
    monkeypatch.setenv("LABKIT_VENV", str(learner_env))
    monkeypatch.setenv("LABKIT_LESSONS", "zh-CN")
    config = PyFileConfigLoader("jupyterhub_config.py", str(REPO / "docs" / "hub")).load_config()
    me = pwd.getpwuid(os.getuid())
    learner = type("Spawner", (), {"user": type("User", (), {"name": me.pw_name})})
    assert config.Spawner.environment["LABKIT_HOME"](learner) == str(Path(me.pw_dir) / seats.WORKSPACE)
    assert config.Spawner.environment["PATH"].startswith(str(learner_env / "bin"))
    assert config.Spawner.cmd == [str(learner_env / "bin" / "jupyterhub-singleuser")]
    assert config.Spawner.args[-1] == f"--LabApp.app_settings_dir={REPO / 'notebooks' / 'zh-CN' / '.jupyterlab'}"
    assert (config.Spawner.cpu_limit, config.Spawner.mem_limit) == (2, "8G")
    culler, page = config.JupyterHub.services
    assert culler["command"][1:] == ["-m", "jupyterhub_idle_culler", "--timeout=3600"]
    assert page["name"] == "labkit-room" and page["command"][1:] == ["-m", "labkit.room.page"]
    assert config.JupyterHub.load_roles[0]["services"] == ["idle-culler"]
    monkeypatch.setenv("LABKIT_VENV", str(tmp_path))   # an environment learners could not run is refused, saying why
    with pytest.raises(SystemExit, match="cannot serve learners.*has no jupyterhub-singleuser"):
        PyFileConfigLoader("jupyterhub_config.py", str(REPO / "docs" / "hub")).load_config()


@pytest.fixture(scope="module")
def room(learner_env, tmp_path_factory):
    """JupyterHub from the recipe, as root, with three learner accounts and an instructor's
    token (a service with the admin role); yields (hub URL, admin token). Everything goes away after."""
    if not HUB_PROXY.exists():
        pytest.skip("configurable-http-proxy is not installed: `make test` installs it where npm is (docs/HUB.md)")
    for name in LEARNERS:
        subprocess.run(["userdel", "-r", name], capture_output=True)
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True)
    state = tmp_path_factory.mktemp("hub")
    port, admin = free_port(), secrets.token_hex(16)
    (state / "test_config.py").write_text(f"""
load_subconfig({str(REPO / 'docs' / 'hub' / 'jupyterhub_config.py')!r})
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.services.append({{"name": "instructor", "api_token": {admin!r}}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["instructor"]}})
""")
    env = {**os.environ, "LABKIT_DIR": str(REPO), "LABKIT_VENV": str(learner_env), "LABKIT_CORES_PER_LEARNER": "1",
           "LABKIT_ROOM_HOMES": "/home/lkt-*/labkit-workspace", "LABKIT_ROOM_PORT": str(free_port())}
    log = open(state / "hub.log", "w")
    hub = subprocess.Popen([str(Path(sys.prefix) / "bin" / "jupyterhub"), "-f", str(state / "test_config.py")],
                           cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/hub/api/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert hub.poll() is None, (state / "hub.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url, admin
    finally:
        hub.terminate()   # the hub stops every learner's server on its way out (and its post-stop hook runs)
        try:
            hub.wait(120)
        except subprocess.TimeoutExpired:
            hub.kill()
        log.close()
        for name in LEARNERS:
            listed = subprocess.run(["ps", "-u", name, "-o", "pid=,stat=,args="], capture_output=True, text=True).stdout
            left = "\n".join(ln for ln in listed.splitlines() if ln.split()[1][0] != "Z")   # a zombie holds nothing
            subprocess.run(["pkill", "-KILL", "-u", name])
            subprocess.run(["userdel", "-r", name], capture_output=True)
            assert not left, f"{name} left running after the hub stopped:\n{left}"


def token_of(hub: str, admin: str, name: str) -> str:
    api = httpx.Client(base_url=f"{hub}/hub/api", headers={"Authorization": f"token {admin}"}, timeout=30)
    api.post(f"/users/{name}")
    answer = api.post(f"/users/{name}/tokens", json={"note": "test"})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def spawn(hub: str, name: str, token: str) -> None:
    api = httpx.Client(base_url=f"{hub}/hub/api", headers={"Authorization": f"token {token}"}, timeout=30)
    assert api.post(f"/users/{name}/server").status_code in (201, 202)
    for _ in range(360):
        if api.get(f"/users/{name}").json()["servers"].get("", {}).get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{name}'s server did not start")


async def in_terminal(hub: str, name: str, token: str, command: str, timeout: float = 900) -> tuple[int, float, str]:
    """Run ``command`` in a new terminal of ``name``'s server (the Jupyter server's own terminal
    API, through the hub's proxy): its exit status, the seconds it took, what it printed."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=f"{hub}/user/{name}", headers=headers, timeout=30) as client:
        terminal = (await client.post("/api/terminals")).json()["name"]
    ws = await websocket_connect(HTTPRequest(f"{hub.replace('http', 'ws')}/user/{name}/terminals/websocket/{terminal}",
                                             headers=headers))
    start, seen = time.monotonic(), ""
    ws.write_message(json.dumps(["stdin", f"{command}; echo LABKIT-EXIT=$?\r"]))
    while True:
        message = await asyncio.wait_for(ws.read_message(), timeout - (time.monotonic() - start))
        assert message is not None, f"{name}'s terminal closed:\n{seen[-2000:]}"
        kind, *payload = json.loads(message)
        if kind == "stdout":
            seen += payload[0]
            done = re.search(r"LABKIT-EXIT=(\d+)", seen)
            if done:
                ws.close()
                return int(done.group(1)), time.monotonic() - start, seen


def read_json(path: Path):
    return json.loads(path.read_text())


def start_event(job_dir: Path) -> dict:
    line = next(ln for ln in (job_dir / "train.log").read_text().splitlines() if '"event": "start"' in ln)
    return json.loads(line[line.index("{"):])


@needs_other_users
def test_a_room_of_three_learners_on_a_real_jupyterhub(room, learner_env, instructor):
    hub, admin = room
    tokens = {name: token_of(hub, admin, name) for name in LEARNERS}
    for name in LEARNERS:   # one after the other: seats (and cores) in this order
        spawn(hub, name, tokens[name])
    homes = {name: Path(pwd.getpwnam(name).pw_dir) for name in LEARNERS}

    # each learner's work is their own: workspace and lessons, mode 0700, theirs
    for name, home in homes.items():
        for folder in (home / seats.WORKSPACE, home / seats.LESSONS):
            st = folder.stat()
            assert (st.st_uid, st.st_mode & 0o777) == (pwd.getpwnam(name).pw_uid, 0o700), folder
        assert (home / seats.LESSONS / "01_data_prep.ipynb").exists()
    other = as_user("lkt-ben", "ls", str(homes["lkt-ana"] / seats.WORKSPACE), check=False)
    assert other.returncode != 0 and "Permission denied" in other.stderr

    # the lab by the three at once, each in a terminal of their own server; bench/bench_hub.py
    # (LABKIT_HUB_TIMES) times it first for one learner alone, to compare
    lab = f"labkit run {LAB} --profile quick > lab.log 2>&1"
    hub_times = os.environ.get("LABKIT_HUB_TIMES")
    if hub_times:
        alone = asyncio.run(in_terminal(hub, "lkt-ana", tokens["lkt-ana"], lab))
        assert alone[0] == 0, (homes["lkt-ana"] / "lab.log").read_text()[-3000:]

    async def everyone():
        return await asyncio.gather(*(in_terminal(hub, n, tokens[n], lab) for n in LEARNERS))
    together = dict(zip(LEARNERS, asyncio.run(everyone())))
    for name, (status, _, printed) in together.items():
        assert status == 0, (name, (homes[name] / "lab.log").read_text()[-3000:])

    # CPU: each server runs on the core it was given, and training used that many threads
    for name, cores in zip(LEARNERS, ("0", "1", "0")):
        server = subprocess.run(["pgrep", "-u", name, "-f", "jupyterhub-singleuser"], capture_output=True,
                                text=True).stdout.split()
        assert server, name
        status = Path(f"/proc/{server[0]}/status").read_text()
        assert re.search(r"Cpus_allowed_list:\s+(\S+)", status).group(1) == cores, name
        trained = list((homes[name] / seats.WORKSPACE / "jobs").glob("*/V[0-9][0-9][0-9]"))
        assert trained, f"{name} trained no job"
        for job in trained:
            assert start_event(job)["threads"] == 1, (name, job.name)

    # a service per learner, reached through the hub's proxy by its learner only
    urls = {}
    for name in LEARNERS:
        status, _, printed = asyncio.run(in_terminal(
            hub, name, tokens[name], "labkit service deploy $(labkit model list --json | python -c "
            "\"import json,sys; m=json.load(sys.stdin)[-1]; print(m['model']+'@'+m['version'])\") --name svc"))
        assert status == 0, printed[-2000:]
        rec = read_json(homes[name] / seats.WORKSPACE / "services" / "svc" / "run.json")
        assert (rec["state"], rec["access"], rec["threads"]) == ("RUNNING", "owner", 1)
        urls[name] = rec
    for name, rec in urls.items():
        mine = httpx.Client(base_url=hub, headers={"Authorization": f"token {tokens[name]}"}, timeout=30)
        assert mine.get(f"/user/{name}/proxy/{rec['port']}/health").json() == {"health": "true"}
        docs = mine.get(f"/user/{name}/proxy/{rec['port']}/docs")
        assert docs.status_code == 200 and f"/user/{name}/proxy/{rec['port']}/openapi.json" in docs.text
    ana, ben = urls["lkt-ana"], tokens["lkt-ben"]
    other = httpx.Client(base_url=hub, headers={"Authorization": f"token {ben}"}, timeout=30, follow_redirects=False)
    assert other.get(f"/user/lkt-ana/proxy/{ana['port']}/health").status_code in (302, 403)   # the hub: not ben's server
    through_bens = other.get(f"/user/lkt-ben/proxy/{ana['port']}/health")   # ben's own proxy, to ana's port
    assert through_bens.status_code == 403 and "answers only the user" in through_bens.text
    direct = as_user("lkt-ben", system_python(), "-c", "import urllib.request,sys\ntry: urllib.request.urlopen(sys.argv[1])\n"
                     "except Exception as e: print(e.code)", f"{ana['url']}/health").stdout.strip()
    assert direct == "403"

    # what a learner runs sees and touches only their own: status, gc, stop --all (ben's, here)
    python, ben_home = str(learner_env / "bin" / "python"), {"LABKIT_HOME": str(homes["lkt-ben"] / seats.WORKSPACE)}
    seen = json.loads(as_user("lkt-ben", python, "-m", "labkit.cli", "status", "--json", env=ben_home).stdout)
    assert [r["name"] for r in seen["running"]] == ["svc"] and seen["disk"]["home"] == ben_home["LABKIT_HOME"]
    as_user("lkt-ben", python, "-m", "labkit.cli", "gc", env=ben_home)
    as_user("lkt-ben", python, "-m", "labkit.cli", "service", "stop", "--all", env=ben_home)
    for name, state in (("lkt-ana", "RUNNING"), ("lkt-ben", "STOPPED"), ("lkt-chen", "RUNNING")):
        assert read_json(homes[name] / seats.WORKSPACE / "services" / "svc" / "run.json")["state"] == state, name

    # the instructor's view: labkit room status, and the page through the hub (admins only)
    as_user("lkt-chen", "touch", str(homes["lkt-chen"] / seats.LESSONS / "03_convert_model.ipynb"))   # chen saves lesson 3
    listed = subprocess.run([learner_env / "bin" / "labkit", "room", "status", "--homes", "/home/lkt-*/labkit-workspace",
                             "--json"], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    found = {e["learner"]: e for e in json.loads(listed.stdout)}
    assert sorted(found) == list(LEARNERS)
    assert [found[n]["lesson"] for n in LEARNERS] == [None, None, "03_convert_model"]
    for name, entry in found.items():
        assert entry["stage"] == "service" and entry["jobs"], entry
        assert all(j["state"] == "COMPLETED" and "accuracy" in j["metrics"] for j in entry["jobs"])
        assert entry["disk_bytes"] > 0 and entry["last_error"] is None
    assert found["lkt-ana"]["running"] == ["service svc"] and found["lkt-ben"]["running"] == []
    page = httpx.get(f"{hub}/services/labkit-room/", headers={"Authorization": f"token {admin}"}, timeout=60)
    assert page.status_code == 200 and all(name in page.text for name in LEARNERS), page.text
    assert page.text.count("5 deploy") == 3 and "class=error>/" not in page.text, page.text
    chinese = httpx.get(f"{hub}/services/labkit-room/?lang=zh-CN", headers={"Authorization": f"token {admin}"}, timeout=60)
    assert "学员" in chinese.text and "5 部署" in chinese.text
    assert httpx.get(f"{hub}/services/labkit-room/json", headers={"Authorization": f"token {admin}"},
                     timeout=60).json()[0]["learner"] == "lkt-ana"
    refused = httpx.get(f"{hub}/services/labkit-room/", headers={"Authorization": f"token {tokens['lkt-ana']}"}, timeout=60)
    assert refused.status_code == 403

    # a learner who fell behind gets the instructor's pack, from a shared read-only folder, as themselves
    shared = Path(tempfile.mkdtemp(prefix="labkit-packs-"))
    try:
        shared.chmod(0o755)
        shutil.copy(instructor[1] / "flowers.tar.gz", shared)
        (shared / "flowers.tar.gz").chmod(0o644)
        given = subprocess.run([learner_env / "bin" / "labkit", "room", "give", "lkt-chen", "flowers.tar.gz",
                                "--packs", str(shared), "--homes", "/home/lkt-*/labkit-workspace"],
                               capture_output=True, text=True)
        assert given.returncode == 0, given.stderr
        placed = homes["lkt-chen"] / seats.WORKSPACE / "datasets" / "fl"
        assert placed.stat().st_uid == pwd.getpwnam("lkt-chen").pw_uid
    finally:
        shutil.rmtree(shared)

    # culled: ana's server stops (the request jupyterhub-idle-culler makes); her plain service stops
    # with it, the one she deployed with --auto-stop keeps serving until its time
    status, _, printed = asyncio.run(in_terminal(hub, "lkt-ana", tokens["lkt-ana"],
                                                 f"labkit service deploy {ana['model']} --name kept --auto-stop 3600"))
    assert status == 0, printed[-2000:]
    api = httpx.Client(base_url=f"{hub}/hub/api", headers={"Authorization": f"token {admin}"}, timeout=120)
    assert api.delete("/users/lkt-ana/server").status_code in (202, 204)
    plain = homes["lkt-ana"] / seats.WORKSPACE / "services" / "svc" / "run.json"
    for _ in range(240):   # until the hub has stopped the server and run its post-stop hook
        if not api.get("/users/lkt-ana").json()["servers"] and read_json(plain)["state"] == "STOPPED":
            break
        time.sleep(0.5)
    ana_home = {"LABKIT_HOME": str(homes["lkt-ana"] / seats.WORKSPACE)}
    seen = json.loads(as_user("lkt-ana", python, "-m", "labkit.cli", "status", "--json", env=ana_home).stdout)
    assert [(r["kind"], r["name"]) for r in seen["running"]] == [("service", "kept")]
    assert read_json(homes["lkt-ana"] / seats.WORKSPACE / "services" / "svc" / "run.json")["state"] == "STOPPED"
    as_user("lkt-ana", python, "-m", "labkit.cli", "service", "stop", "kept", env=ana_home)

    # the lab alone and the three at once, for docs/HUB.md (bench/bench_hub.py runs this test and keeps them)
    if hub_times:
        times = {"alone": alone[1], **{f"together.{name}": took for name, (_, took, _) in together.items()}}
        Path(hub_times).write_text(json.dumps(times))
