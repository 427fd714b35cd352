//! The classes a chest X-ray can carry and the two ways models group them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an image shows, as far as the source's metadata says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Covid,
    Normal,
    /// Any non-COVID pneumonia (bacterial, viral, SARS, fungal…).
    Pneumonia,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Covid, Class::Normal, Class::Pneumonia];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Covid => "covid",
            Class::Normal => "normal",
            Class::Pneumonia => "pneumonia",
        }
    }

    /// Maps the folder names and findings used by the public collections
    /// (`COVID-19`, `No_findings`, `Viral Pneumonia`, `PNEUMONIA`…) to a class.
    /// Returns `None` for anything it does not recognise, so callers can count and report it.
    pub fn from_folder_name(name: &str) -> Option<Class> {
        let n: String =
            name.trim().to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' }).collect();
        let n = n.split_whitespace().collect::<Vec<_>>().join(" ");
        match n.as_str() {
            "covid" | "covid 19" | "covid19" | "covid positive" | "positive" => Some(Class::Covid),
            "normal" | "no findings" | "no finding" | "healthy" | "negative" => Some(Class::Normal),
            "pneumonia" | "viral pneumonia" | "bacterial pneumonia" | "lung opacity" => Some(Class::Pneumonia),
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Class::from_folder_name(s).ok_or_else(|| format!("unknown class `{s}` (expected covid, normal or pneumonia)"))
    }
}

/// How a model groups the classes: COVID against everything else, or all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClassSet {
    #[default]
    Binary,
    ThreeClass,
}

impl ClassSet {
    /// Output names in model output order. Binary models output P(covid) only,
    /// so their single output is index 0 = "covid".
    pub fn names(self) -> &'static [&'static str] {
        match self {
            ClassSet::Binary => &["non-covid", "covid"],
            ClassSet::ThreeClass => &["covid", "normal", "pneumonia"],
        }
    }

    /// Index of `class` among [`ClassSet::names`].
    pub fn index(self, class: Class) -> usize {
        match (self, class) {
            (ClassSet::Binary, Class::Covid) => 1,
            (ClassSet::Binary, _) => 0,
            (ClassSet::ThreeClass, c) => Class::ALL.iter().position(|&x| x == c).unwrap(),
        }
    }

    #[allow(clippy::len_without_is_empty)] // a class set always has classes
    pub fn len(self) -> usize {
        self.names().len()
    }
}

impl FromStr for ClassSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" => Ok(ClassSet::Binary),
            "three-class" | "3" | "three" => Ok(ClassSet::ThreeClass),
            _ => Err(format!("unknown class set `{s}` (expected binary or three-class)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_of_the_public_collections_map_to_classes() {
        for (name, class) in [
            ("covid", Class::Covid),
            ("COVID", Class::Covid),
            ("COVID-19", Class::Covid),
            ("normal", Class::Normal),
            ("NORMAL", Class::Normal),
            ("No_findings", Class::Normal),
            ("No Finding", Class::Normal),
            ("pneumonia", Class::Pneumonia),
            ("PNEUMONIA", Class::Pneumonia),
            ("Viral Pneumonia", Class::Pneumonia),
        ] {
            assert_eq!(Class::from_folder_name(name), Some(class), "{name}");
        }
        assert_eq!(Class::from_folder_name("Lateral"), None);
        assert_eq!(Class::from_folder_name(""), None);
    }

    #[test]
    fn binary_groups_everything_but_covid() {
        assert_eq!(ClassSet::Binary.index(Class::Covid), 1);
        assert_eq!(ClassSet::Binary.index(Class::Pneumonia), 0);
        assert_eq!(ClassSet::ThreeClass.index(Class::Pneumonia), 2);
    }
}
