#!/usr/bin/env python3
"""50 handsets upload a 3 MiB photo each at once: throughput and server RSS.

Usage: python3 crates/bench/scripts/photo_upload.py target/release/patrol-sync
Starts the server (serve --demo, fresh data dir), pushes one photo fact per handset,
then PUTs all 50 bodies concurrently, sampling the server's RSS every 10 ms."""
import json, os, hashlib, subprocess, tempfile, threading, time, urllib.request, uuid, socket, sys
BIN = sys.argv[1]; N = 50; SIZE = 3 * 1024 * 1024
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
data = tempfile.mkdtemp()
env = dict(os.environ, PATROL_DATA_DIR=data, PATROL_LISTEN=f"127.0.0.1:{port}", RUST_LOG="warn")
srv = subprocess.Popen([BIN, "serve", "--demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}"
def req(method, path, body=None, token=None, headers=None):
    h = dict(headers or {})
    if token: h["Authorization"] = "Bearer " + token
    if isinstance(body, (dict, list)): body = json.dumps(body).encode(); h["Content-Type"] = "application/json"
    r = urllib.request.Request(base + path, data=body, method=method, headers=h)
    with urllib.request.urlopen(r, timeout=300) as resp: return resp.status, resp.read()
for _ in range(100):
    try: req("GET", "/healthz"); break
    except Exception: time.sleep(0.1)
def rss():
    st = open(f"/proc/{srv.pid}/status").read()
    return {k: int(l.split()[1]) for l in st.splitlines() for k in ("VmRSS", "VmHWM") if l.startswith(k + ":")}
sessions = []
for i in range(N):
    dev = str(uuid.uuid4())
    _, b = req("POST", "/v1/auth/login", {"username": "guard1", "password": "demo", "device": {"id": dev, "name": f"h{i}", "platform": "android", "app_version": "1"}})
    b = json.loads(b); sessions.append((b["access_token"], dev, b["estates"][0]["id"]))
photos = []
now = time.time()
for i, (tok, dev, est) in enumerate(sessions):
    body = b"\xff\xd8\xff\xe0" + os.urandom(SIZE - 4)
    h = hashlib.sha256(body).hexdigest(); photos.append((tok, h, body))
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 5))
    ch = {"kind": "photo", "id": str(uuid.UUID(int=(int(now*1000) << 80) | (7 << 76) | (2 << 62) | uuid.uuid4().int & ((1 << 62) - 1) & ~(0xF << 76))), "seq": 1,
          "hlc": f"{int(now*1000)}-0000", "recorded_at": ts, "age_ms": 5000,
          "data": {"estate_id": est, "sha256": h, "bytes": SIZE, "mime": "image/jpeg", "subject": {"kind": "scan", "id": str(uuid.uuid4())}, "role": "evidence"}}
    _, a = req("POST", "/v1/sync/push", {"device_id": dev, "batch_id": str(uuid.uuid4()), "sent_at": ts.replace("Z","Z"), "changes": [ch]}, tok)
    a = json.loads(a); assert a["results"][0]["status"] == "accepted", a; assert a["photos_missing"] == [h]
before = rss()
stat = []
def up(p):
    tok, h, body = p
    st, _ = req("PUT", f"/v1/photos/{h}", body, tok, {"Content-Type": "application/octet-stream"})
    stat.append(st)
t0 = time.time()
ts_ = [threading.Thread(target=up, args=(p,)) for p in photos]
for t in ts_: t.start()
peak = 0
while any(t.is_alive() for t in ts_):
    peak = max(peak, rss()["VmRSS"]); time.sleep(0.01)
for t in ts_: t.join()
dt = time.time() - t0
after = rss()
srv.terminate(); srv.wait()
import shutil; shutil.rmtree(data, ignore_errors=True)
print(json.dumps({"handsets": N, "photo_mib": 3, "statuses": sorted(set(stat)), "seconds": round(dt, 2),
  "MB_per_s": round(N * SIZE / 1e6 / dt, 1), "rss_before_kib": before["VmRSS"], "rss_peak_sampled_kib": peak, "vm_hwm_kib": after["VmHWM"]}))
