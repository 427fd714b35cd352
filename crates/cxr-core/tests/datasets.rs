//! Dataset readers, near-duplicate grouping and splits on the real collections in
//! `../shared/datasets` (override with `CXR_DATASETS`). Expected counts were checked
//! independently (`find | wc -l`, Python's csv module on the metadata, `sha256sum`) and
//! against the datasets README.

use cxr_core::Class;
use cxr_core::dataset::{Layout, discover, kermany_patient_id, read_collection};
use cxr_core::manifest::{IndexConfig, Manifest, index_datasets};
use cxr_core::split::{Split, SplitConfig};
use cxr_test_support::{datasets, workspace};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn count_by_label(records: &[cxr_core::dataset::Record]) -> BTreeMap<Class, usize> {
    let mut counts = BTreeMap::new();
    for r in records {
        *counts.entry(r.label).or_default() += 1;
    }
    counts
}

#[test]
fn every_collection_is_recognised_and_read_with_documented_counts() {
    let root = datasets();
    let found = discover(std::slice::from_ref(&root));
    assert!(found.unrecognised.is_empty(), "unrecognised: {:?}", found.unrecognised);
    let layouts: BTreeMap<String, Layout> =
        found.collections.iter().map(|(p, l)| (p.file_name().unwrap().to_string_lossy().into_owned(), *l)).collect();
    assert_eq!(layouts["covid-chestxray-dataset"], Layout::Ieee8023);
    assert_eq!(layouts["covid19-radiography"], Layout::Radiography);
    assert_eq!(layouts["chest_xray"], Layout::Kermany);
    assert_eq!(layouts["hannover-covid"], Layout::Hannover);
    assert_eq!(layouts["nih-chestxray14-sample"], Layout::Nih);

    // ieee8023: 673 rows = 84 CT + 14 X-rays whose image is missing + 44 lateral + 7 findings
    // without a class (ARDS 4, Lipoid 3) + 4 rows repeating an image + 520 usable.
    let ieee = read_collection(&root.join("covid-chestxray-dataset"), Layout::Ieee8023).unwrap();
    assert_eq!(ieee.source, "covid-chestxray-dataset");
    assert_eq!(ieee.skipped.count("CT"), 84);
    assert_eq!(ieee.skipped.count("image file missing"), 14);
    assert_eq!(ieee.skipped.count("lateral view (L)"), 44);
    assert_eq!(ieee.skipped.count("unknown finding `ARDS`"), 4);
    assert_eq!(ieee.skipped.count("unknown finding `Lipoid`"), 3);
    assert_eq!(ieee.skipped.count("image already listed in an earlier row"), 4);
    assert_eq!(ieee.skipped.total() + ieee.records.len(), 673);
    assert_eq!(
        count_by_label(&ieee.records),
        BTreeMap::from([(Class::Covid, 427), (Class::Normal, 19), (Class::Pneumonia, 74)])
    );
    assert_eq!(ieee.records.iter().map(|r| &r.patient_id).collect::<BTreeSet<_>>().len(), 303);

    let kermany = read_collection(&root.join("chest_xray"), Layout::Kermany).unwrap();
    assert!(kermany.skipped.is_empty(), "{}", kermany.skipped);
    assert_eq!(count_by_label(&kermany.records), BTreeMap::from([(Class::Normal, 1575), (Class::Pneumonia, 4265)]));

    let radiography = read_collection(&root.join("covid19-radiography"), Layout::Radiography).unwrap();
    assert!(radiography.skipped.is_empty(), "{}", radiography.skipped);
    assert_eq!(count_by_label(&radiography.records), BTreeMap::from([(Class::Covid, 3616), (Class::Normal, 5000)]));
    assert!(radiography.records.iter().any(|r| r.patient_id == "covid19-radiography:COVID-17"));
    assert_eq!(radiography.records.iter().map(|r| &r.patient_id).collect::<BTreeSet<_>>().len(), 8616);

    let hannover = read_collection(&root.join("hannover-covid"), Layout::Hannover).unwrap();
    assert!(hannover.skipped.is_empty(), "{}", hannover.skipped);
    assert_eq!(count_by_label(&hannover.records), BTreeMap::from([(Class::Covid, 243)]));
    assert_eq!(hannover.records.iter().map(|r| &r.patient_id).collect::<BTreeSet<_>>().len(), 71);

    let nih = read_collection(&root.join("nih-chestxray14-sample"), Layout::Nih).unwrap();
    assert!(nih.skipped.is_empty(), "{}", nih.skipped);
    assert_eq!(count_by_label(&nih.records), BTreeMap::from([(Class::Normal, 250), (Class::Pneumonia, 500)]));
    assert!(nih.records.iter().all(|r| r.patient_id.len() == 8));
}

#[test]
fn kermany_patient_ids_cover_every_file_name_in_the_collection() {
    assert_eq!(kermany_patient_id("person1000_bacteria_2931.jpeg").as_deref(), Some("person1000"));
    assert_eq!(kermany_patient_id("IM-0115-0001.jpeg").as_deref(), Some("IM-0115"));
    assert_eq!(kermany_patient_id("NORMAL2-IM-0012-0001.jpeg").as_deref(), Some("NORMAL2-IM-0012"));
    let kermany = read_collection(&datasets().join("chest_xray"), Layout::Kermany).unwrap();
    let patients: BTreeSet<&str> = kermany.records.iter().map(|r| r.patient_id.as_str()).collect();
    // Several films per child: far fewer patients than images.
    assert!(patients.len() < kermany.records.len() * 3 / 4, "{} patients", patients.len());
}

/// sha256 of every file in `dir` (recursively) → the files with that content.
fn byte_identical_sets(dir: &Path) -> Vec<Vec<PathBuf>> {
    let mut by_hash: HashMap<[u8; 32], Vec<PathBuf>> = HashMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                by_hash.entry(Sha256::digest(std::fs::read(&p).unwrap()).into()).or_default().push(p);
            }
        }
    }
    by_hash.into_values().filter(|v| v.len() > 1).collect()
}

/// Indexes everything once (fingerprinting ~16,000 images) and checks grouping and splits.
#[test]
fn whole_collection_index_groups_documented_duplicates_and_never_leaks() {
    let root = datasets();
    let mut manifest = index_datasets(std::slice::from_ref(&root), &IndexConfig::default(), &()).unwrap();
    let meta = manifest.meta.clone().unwrap();
    for report in &meta.collections {
        assert_eq!(report.unreadable_images, 0, "{}: {}", report.source, report.skipped);
    }
    assert_eq!(manifest.entries.len(), 520 + 5840 + 8616 + 243 + 750);
    assert!(manifest.leaks().is_empty(), "{:?}", &manifest.leaks()[..5.min(manifest.leaks().len())]);
    let by_path: HashMap<&Path, &cxr_core::ManifestEntry> =
        manifest.entries.iter().map(|e| (e.path.as_path(), e)).collect();

    // The README: chest_xray holds 30 sets of byte-identical files; each must be one group.
    let identical = byte_identical_sets(&root.join("chest_xray"));
    assert_eq!(identical.len(), 30);
    for set in &identical {
        let groups: BTreeSet<Option<usize>> = set.iter().map(|p| by_path[p.as_path()].dup_group).collect();
        assert!(groups.len() == 1 && groups.first().unwrap().is_some(), "{set:?} in groups {groups:?}");
    }

    // The README: covid19-radiography Normal-63 … Normal-1403 are the 1,341 chest_xray/train/NORMAL
    // pictures. Recall = share of them grouped with a chest_xray image.
    let group_sources: HashMap<usize, BTreeSet<&str>> = manifest.entries.iter().fold(HashMap::new(), |mut m, e| {
        if let Some(g) = e.dup_group {
            m.entry(g).or_default().insert(e.source.as_str());
        }
        m
    });
    let with_kermany =
        |e: &cxr_core::ManifestEntry| e.dup_group.is_some_and(|g| group_sources[&g].contains("chest_xray"));
    let normal_number =
        |e: &cxr_core::ManifestEntry| e.path.file_stem()?.to_str()?.strip_prefix("Normal-")?.parse::<u32>().ok();
    let documented: Vec<_> =
        manifest.entries.iter().filter(|e| normal_number(e).is_some_and(|n| (63..=1403).contains(&n))).collect();
    assert_eq!(documented.len(), 1341);
    let found = documented.iter().filter(|e| with_kermany(e)).count();
    // Outside that range Normal images are adult NIH/RSNA films: any Kermany match there is false.
    let false_matches = manifest
        .entries
        .iter()
        .filter(|e| normal_number(e).is_some_and(|n| !(63..=1403).contains(&n)) && with_kermany(e))
        .count();
    let covid_copies = manifest
        .entries
        .iter()
        .filter(|e| {
            e.source == "covid19-radiography"
                && e.label == Class::Covid
                && e.dup_group.is_some_and(|g| group_sources[&g].len() > 1)
        })
        .count();
    let largest = manifest.duplicate_groups().first().map_or(0, Vec::len);
    eprintln!(
        "Normal-63…1403 ↔ chest_xray recall {found}/1341; Kermany matches outside that range {false_matches}/3659; \
         radiography COVID images with a copy in another source {covid_copies}/3616; {} groups, largest {largest}",
        manifest.duplicate_groups().len()
    );
    // Fingerprinting and grouping are deterministic, so the README's figures are exact here: a
    // change that loses a documented copy, or matches one adult film to a child's, fails.
    assert_eq!(found, 1341, "documented Radiography copies of chest_xray/train/NORMAL found");
    assert_eq!(false_matches, 0, "adult Normal images matched pediatric Kermany films");
    assert_eq!(covid_copies, 479, "radiography COVID images grouped with an ieee8023/Hannover copy");
    assert!(largest < 50, "a duplicate group of {largest} images means chained false matches");

    // The committed split the shipped cards were evaluated on (models/splits/seed42.csv: the test
    // and holdout rows, paths relative to the datasets root) must be what indexing makes today
    // with the recipes' settings (models/recipes/prepare.sh), row for row; otherwise CI re-scores
    // the models on a split nobody can re-derive, or one that now leaks into training.
    let mut recipe = manifest.clone();
    recipe
        .resplit(&SplitConfig {
            holdout_sources: vec!["hannover-covid".into(), "nih-chestxray14-sample".into()],
            ..SplitConfig::default()
        })
        .unwrap();
    let derived: Vec<cxr_core::ManifestEntry> = recipe
        .entries
        .iter()
        .filter(|e| matches!(e.split, Split::Test | Split::Holdout))
        .map(|e| cxr_core::ManifestEntry { path: e.path.strip_prefix(&root).unwrap().to_owned(), ..e.clone() })
        .collect();
    let stored = Manifest::read(&workspace().join("models/splits/seed42.csv")).unwrap();
    assert_eq!(stored.entries.len(), derived.len(), "rows in models/splits/seed42.csv against a fresh index");
    for (kept, fresh) in stored.entries.iter().zip(&derived) {
        assert_eq!(kept, fresh, "models/splits/seed42.csv differs from a fresh seed-42 index");
    }

    // Re-splitting: same seed → same splits, other seed → other splits, holdouts only in holdout.
    let original: Vec<Split> = manifest.entries.iter().map(|e| e.split).collect();
    manifest.resplit(&SplitConfig::default()).unwrap();
    assert_eq!(original, manifest.entries.iter().map(|e| e.split).collect::<Vec<_>>());
    manifest.resplit(&SplitConfig { seed: 7, ..SplitConfig::default() }).unwrap();
    assert_ne!(original, manifest.entries.iter().map(|e| e.split).collect::<Vec<_>>());
    assert!(manifest.leaks().is_empty());

    let holdout = SplitConfig { holdout_sources: vec!["hannover-covid".into()], ..SplitConfig::default() };
    manifest.resplit(&holdout).unwrap();
    assert!(manifest.leaks().is_empty());
    for e in &manifest.entries {
        assert_eq!(e.source == "hannover-covid", e.split == Split::Holdout, "{}: {}", e.path.display(), e.split);
    }
    let hannover_groups: BTreeSet<usize> =
        manifest.entries.iter().filter(|e| e.source == "hannover-covid").map(|e| e.split_group).collect();
    for e in
        manifest.entries.iter().filter(|e| hannover_groups.contains(&e.split_group) && e.source != "hannover-covid")
    {
        assert_eq!(e.split, Split::Excluded, "{} copies a held-out picture", e.path.display());
    }

    // Round trip through CSV + sidecar.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("manifest.csv");
    manifest.write(&csv).unwrap();
    assert_eq!(Manifest::read(&csv).unwrap(), manifest);
}

/// Copies a few real images into a temporary folder-per-class dataset next to broken files.
#[test]
fn bad_files_are_skipped_by_name_and_counted() {
    let root = datasets();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mixed");
    for class in ["covid", "normal"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
    }
    let covid = root.join("covid19-radiography/COVID");
    for n in 1..=3 {
        std::fs::copy(covid.join(format!("COVID-{n}.jpg")), data.join(format!("covid/COVID-{n}.jpg"))).unwrap();
    }
    std::fs::copy(root.join("hannover-covid/png/fff13f3a.png"), data.join("covid/h.png")).unwrap();
    std::fs::copy(
        root.join("nih-chestxray14-sample/No_findings/").read_dir().unwrap().next().unwrap().unwrap().path(),
        data.join("normal/n.jpg"),
    )
    .unwrap();
    std::fs::write(data.join("normal/empty.jpg"), b"").unwrap();
    let jpeg = std::fs::read(covid.join("COVID-4.jpg")).unwrap();
    std::fs::write(data.join("normal/truncated.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    std::fs::write(data.join("normal/notes.jpg"), b"this is not an image").unwrap();
    std::fs::write(data.join("normal/readme.txt"), b"text").unwrap();
    std::fs::create_dir_all(data.join("Lateral")).unwrap();
    std::fs::write(data.join("Lateral/x.png"), b"").unwrap();

    let manifest = index_datasets(std::slice::from_ref(&data), &IndexConfig::default(), &()).unwrap();
    let report = &manifest.meta.as_ref().unwrap().collections[0];
    assert_eq!(report.source, "mixed");
    assert_eq!(report.indexed, 5, "{}", report.skipped);
    assert_eq!(manifest.entries.len(), 5);
    let skipped = &report.skipped;
    assert_eq!(skipped.count("empty image file (0 bytes)"), 1, "{skipped}");
    assert_eq!(skipped.count("not a PNG, JPEG or DICOM file"), 1, "{skipped}");
    assert_eq!(skipped.count("undecodable or truncated image"), 1, "{skipped}");
    assert_eq!(skipped.count("not an image file name (extension)"), 1, "{skipped}");
    assert_eq!(skipped.count("folder `Lateral` is not a class name"), 1, "{skipped}");
    assert_eq!(report.unreadable_images, 3);
}

#[test]
fn coronahack_metadata_is_read_with_its_virus_categories() {
    let root = datasets();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("coronahack");
    std::fs::create_dir_all(data.join("train")).unwrap();
    std::fs::create_dir_all(data.join("test")).unwrap();
    let normal = root.join("chest_xray/train/NORMAL/IM-0115-0001.jpeg");
    let bacteria = root.join("chest_xray/train/PNEUMONIA/person1000_bacteria_2931.jpeg");
    std::fs::copy(&normal, data.join("train/IM-0115-0001.jpeg")).unwrap();
    std::fs::copy(&bacteria, data.join("test/person1000_bacteria_2931.jpeg")).unwrap();
    std::fs::copy(root.join("covid19-radiography/COVID/COVID-1.jpg"), data.join("train/covid-case.jpg")).unwrap();
    std::fs::copy(root.join("covid19-radiography/COVID/COVID-2.jpg"), data.join("train/ards.jpg")).unwrap();
    std::fs::write(
        data.join("Chest_xray_Corona_Metadata.csv"),
        ",X_ray_image_name,Label,Dataset_type,Label_2_Virus_category,Label_1_Virus_category\n\
         0,IM-0115-0001.jpeg,Normal,TRAIN,,\n\
         1,person1000_bacteria_2931.jpeg,Pnemonia,TEST,,bacteria\n\
         2,covid-case.jpg,Pnemonia,TRAIN,COVID-19,Virus\n\
         3,ards.jpg,Pnemonia,TRAIN,ARDS,Stress-Smoking\n\
         4,gone.jpeg,Normal,TRAIN,,\n",
    )
    .unwrap();
    let found = discover(std::slice::from_ref(&data));
    assert_eq!(found.collections, vec![(data.clone(), Layout::CoronaHack)]);
    let c = read_collection(&data, Layout::CoronaHack).unwrap();
    let got: Vec<(String, Class, String)> = c
        .records
        .iter()
        .map(|r| (r.path.file_name().unwrap().to_string_lossy().into_owned(), r.label, r.patient_id.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("IM-0115-0001.jpeg".into(), Class::Normal, "IM-0115".into()),
            ("person1000_bacteria_2931.jpeg".into(), Class::Pneumonia, "person1000".into()),
            ("covid-case.jpg".into(), Class::Covid, "coronahack:covid-case".into()),
        ]
    );
    assert_eq!(c.skipped.count("image file missing"), 1, "{}", c.skipped);
    assert_eq!(c.skipped.count("unknown finding `Stress-Smoking` (not an infection)"), 1, "{}", c.skipped);
}

#[test]
fn unrecognised_folders_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("random/stuff")).unwrap();
    let found = discover(&[dir.path().to_owned()]);
    assert!(found.collections.is_empty());
    assert!(found.unrecognised.contains(&dir.path().join("random")));
}

/// Writes every candidate pair with its hash distance and correlation, for choosing the
/// duplicate criteria: `cargo test -p cxr-core --test datasets -- --ignored dump_candidate_pairs`.
#[test]
#[ignore = "analysis aid, writes $CXR_PAIRS_OUT (default: a temp file)"]
fn dump_candidate_pairs() {
    use cxr_core::dedup::{DuplicateCriteria, near_duplicate_pairs};
    use cxr_core::phash::{Fingerprint, hamming};
    let root = datasets();
    let found = discover(std::slice::from_ref(&root));
    let records: Vec<_> = found.collections.iter().flat_map(|(p, l)| read_collection(p, *l).unwrap().records).collect();
    let prints: Vec<Fingerprint> =
        records.iter().map(|r| Fingerprint::of(&cxr_core::load_image(&r.path).unwrap())).collect();
    let pairs = near_duplicate_pairs(&prints, DuplicateCriteria { max_distance: 16, min_correlation: 0.85 });
    let out =
        std::env::var("CXR_PAIRS_OUT").unwrap_or_else(|_| std::env::temp_dir().join("pairs.tsv").display().to_string());
    let mut text = String::new();
    for (a, b) in pairs {
        text += &format!(
            "{}\t{}\t{}\t{}\n",
            records[a].path.display(),
            records[b].path.display(),
            hamming(prints[a].phash, prints[b].phash),
            prints[a].correlation(&prints[b])
        );
    }
    std::fs::write(&out, text).unwrap();
}

/// Draws image pairs side by side for eyeballing near-duplicate candidates: each line of
/// `$CXR_MONTAGE_PAIRS` is two paths separated by a tab; writes `$CXR_MONTAGE_OUT` (PNG).
#[test]
#[ignore = "analysis aid for checking duplicate pairs by eye"]
fn montage_pairs() {
    let (Ok(list), Ok(out)) = (std::env::var("CXR_MONTAGE_PAIRS"), std::env::var("CXR_MONTAGE_OUT")) else {
        panic!("set CXR_MONTAGE_PAIRS (tab-separated path pairs) and CXR_MONTAGE_OUT (PNG)");
    };
    let lines: Vec<String> = std::fs::read_to_string(list).unwrap().lines().map(str::to_owned).collect();
    const SIDE: u32 = 160;
    let mut canvas = image::GrayImage::from_pixel(SIDE * 2 + 8, (SIDE + 8) * lines.len() as u32, image::Luma([255]));
    for (row, line) in lines.iter().enumerate() {
        for (col, path) in line.split('\t').take(2).enumerate() {
            let grey = cxr_core::load_image(Path::new(path)).unwrap();
            let img = image::GrayImage::from_raw(grey.width, grey.height, grey.to_luma8()).unwrap();
            let small = image::imageops::resize(&img, SIDE, SIDE, image::imageops::FilterType::Triangle);
            image::imageops::replace(
                &mut canvas,
                &small,
                (col as u32 * (SIDE + 8)) as i64,
                (row as u32 * (SIDE + 8)) as i64,
            );
        }
    }
    canvas.save(out).unwrap();
}
