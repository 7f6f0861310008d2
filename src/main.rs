mod config;
mod lab;
mod plan;

fn main() {}
