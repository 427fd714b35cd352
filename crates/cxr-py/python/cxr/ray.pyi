import os
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

PathArg = Union[str, os.PathLike[str]]

def list_images(paths_or_folder: Union[PathArg, Iterable[PathArg]]) -> List[str]: ...
def score(
    paths_or_folder: Union[PathArg, Iterable[PathArg]],
    model: str = "default",
    output: PathArg = "out.parquet",
    *,
    address: Optional[str] = None,
    batch_size: int = 16,
    concurrency: Optional[Union[int, Tuple[int, int]]] = None,
    num_cpus: float = 1,
) -> Dict[str, Any]: ...
