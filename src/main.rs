fn main() {
    println!("plexnet");
}
