use std::os::unix::fs::FileExt;
use std::time::Instant;
fn main() {
    let dir = std::env::temp_dir().join(format!("dv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("x.db");
    let w = rusqlite::Connection::open(&path).unwrap();
    w.pragma_update(None, "journal_mode", "WAL").unwrap();
    w.execute_batch("CREATE TABLE t(x)").unwrap();
    let shm = std::fs::File::open(dir.join("x.db-shm")).unwrap();
    let n = 2_000_000;
    let mut buf = [0u8; 48];
    let t = Instant::now();
    let mut acc = 0u64;
    for _ in 0..n {
        shm.read_exact_at(&mut buf, 0).unwrap();
        acc += buf[8] as u64;
    }
    println!("pread shm: {:.0} ns/call ({acc})", t.elapsed().as_nanos() as f64 / n as f64);
    let before = buf;
    w.execute("INSERT INTO t VALUES (1)", []).unwrap();
    shm.read_exact_at(&mut buf, 0).unwrap();
    println!("changed after commit: {}", before != buf);
    let m = std::sync::Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *m.lock().unwrap() += 1;
    }
    println!("mutex: {:.0} ns/call", t.elapsed().as_nanos() as f64 / n as f64);
    std::fs::remove_dir_all(&dir).unwrap();
}
