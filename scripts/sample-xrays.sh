#!/usr/bin/env bash
# Sourced, not run: sample_xrays DATASETS DEST N copies the first N real X-rays by name from each
# of four folders (COVID and normal from one source, pneumonia and normal from another) into DEST,
# named FOLDER-FILE. The ARM check and the profile comparison score the same images this way.
sample_xrays() {
    local datasets=$1 dest=$2 n=$3 folder files f
    for folder in covid19-radiography/COVID covid19-radiography/Normal chest_xray/test/PNEUMONIA chest_xray/test/NORMAL; do
        [ -d "$datasets/$folder" ] || { echo "sample_xrays: $datasets/$folder: real X-rays are needed (set CXR_DATASETS)" >&2; return 1; }
        # Whole listing read first: `find | sort | head` dies of SIGPIPE under pipefail.
        mapfile -t files < <(find "$datasets/$folder" -maxdepth 1 -type f | LC_ALL=C sort)
        for f in "${files[@]:0:$n}"; do
            cp "$f" "$dest/$(basename "$folder")-$(basename "$f")"
        done
    done
}
