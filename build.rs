// The image build contexts under images/ are embedded in the binary (src/images.rs), so a change
// there must rebuild it.
fn main() {
    println!("cargo:rerun-if-changed=images");
}
