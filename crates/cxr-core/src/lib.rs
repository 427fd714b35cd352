//! `cxr-core`: the parts of cxr that need no ML engine, shared by training (`cxr-train`, libtorch)
//! and inference (`cxr-infer`, tract), so both sides read images, label data and score results
//! in exactly the same way.

pub mod card;
pub mod image;
pub mod label;
pub mod preprocess;

pub use card::ModelCard;
pub use image::{GreyImage, ImageError, load_image};
pub use label::{Class, ClassSet};
pub use preprocess::Preprocess;
