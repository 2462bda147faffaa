use std::time::Instant;
fn main() {
    let t = Instant::now();
    let c = gatehouse_catalog::Catalog::embedded();
    let d = t.elapsed();
    println!(
        "first embedded(): {:?} ({} perms, {} routes)",
        d,
        c.len(),
        c.route_count()
    );
}
