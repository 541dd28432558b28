//! The deterministic data generator: the same seed and scale give the same shop everywhere.
//!
//! Each module seeds only its own tables (so each microservice seeds only its own database),
//! from its own random stream derived from the seed and the module's name, so the monolith's one
//! database and the six services' databases hold identical rows.
//!
//! Facts load tests rely on (documented in the README):
//! - users `user<N>@example.com`, N in 1..=users, all with password [`SEED_PASSWORD`];
//! - products 1..=products; every product whose id is a multiple of 50 is *scarce* (stock 3),
//!   all others start with 50..=1000 units;
//! - 0 to 4 reviews per product by distinct users.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::settings::SeedSettings;

/// The password of every seeded user.
pub const SEED_PASSWORD: &str = "splitbench-password";
/// Stock of scarce products (ids that are multiples of [`SCARCE_EVERY`]).
pub const SCARCE_STOCK: i64 = 3;
pub const SCARCE_EVERY: i64 = 50;
/// Rows per multi-row INSERT: well under PostgreSQL's 65,535 bind parameters.
pub const BATCH_ROWS: usize = 500;
/// Seeded rows get fixed timestamps, so two seeded databases are byte-for-byte comparable.
pub const SEED_EPOCH_MS: i64 = 1_700_000_000_000;

/// A random stream for one module, reproducible from the seed.
pub fn rng_for(module: &str, seed: u64) -> StdRng {
    // FNV-1a of the module name keeps the streams apart without a hashing dependency.
    let salt = module.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    StdRng::seed_from_u64(seed ^ salt)
}

pub fn email_of_user(id: i64) -> String {
    format!("user{id}@example.com")
}

pub fn is_scarce(product_id: i64) -> bool {
    product_id % SCARCE_EVERY == 0
}

/// Whether seeding is wanted and at what scale.
pub fn wanted(settings: &SeedSettings) -> bool {
    !settings.no_seed
}

pub const ADJECTIVES: &[&str] = &[
    "Sturdy", "Compact", "Elegant", "Rugged", "Classic", "Modern", "Portable", "Deluxe", "Handmade", "Vintage",
    "Smart", "Silent", "Bright", "Gentle", "Rapid", "Cozy",
];
pub const MATERIALS: &[&str] =
    &["Steel", "Oak", "Cotton", "Leather", "Glass", "Bamboo", "Ceramic", "Wool", "Copper", "Linen", "Granite", "Silk"];
pub const NOUNS: &[&str] = &[
    "Lamp",
    "Chair",
    "Kettle",
    "Backpack",
    "Notebook",
    "Mug",
    "Blanket",
    "Clock",
    "Bottle",
    "Speaker",
    "Desk",
    "Jacket",
    "Pan",
    "Vase",
    "Toolbox",
    "Headphones",
    "Shelf",
    "Bicycle",
    "Tent",
    "Watch",
];
pub const CATEGORY_NAMES: &[&str] = &[
    "Home",
    "Kitchen",
    "Outdoors",
    "Office",
    "Audio",
    "Apparel",
    "Travel",
    "Garden",
    "Sports",
    "Toys",
    "Books",
    "Tools",
    "Lighting",
    "Furniture",
    "Bath",
    "Pets",
    "Crafts",
    "Music",
    "Health",
    "Games",
];
pub const REVIEW_SENTENCES: &[&str] = &[
    "Works exactly as described.",
    "Arrived quickly and well packed.",
    "Good value for the price.",
    "The quality could be better.",
    "I would buy this again.",
    "Not what I expected, but fine.",
    "Excellent build and finish.",
    "Stopped working after a month.",
];

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct_per_module() {
        let a: u64 = rng_for("catalog", 42).random();
        let b: u64 = rng_for("catalog", 42).random();
        let c: u64 = rng_for("reviews", 42).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
