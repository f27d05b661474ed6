"""Code-aware caching: a fingerprint of the project code each component runs.

TFX keys its cache on a component's executor spec, inputs and execution
properties (`tfx/orchestration/portable/cache_utils.py`, `get_cache_context`),
and on the content of a `module_file` only. Our executors are named by class
path and the Trainer's `run_fn` by a dotted path, so an edit of the model,
the noise, the metrics or an executor would otherwise be served from cache.

`attach` adds one execution property, `code_fingerprint`: the SHA-256 of
every source file of this project that the node's code imports, directly or
through other project modules (imports anywhere in a file count, also inside
functions), with their parent packages' `__init__.py`. An edit therefore
re-runs exactly the nodes whose code it touches, and their descendants
(their inputs change). The property is part of the compiled node, so the
same holds for the Kubeflow spec: it is a task parameter there, and KFP v2's
cache key covers the values of task parameters (kubeflow/pipelines,
`api/v2alpha1/cache_key.proto`: `CacheKey.input_parameter_values`). Executors ignore it (they read their own
keys; the function-component executor passes only declared arguments).

Files are found with `importlib.util.find_spec`, which imports parent
packages but never the module itself: no TensorFlow is loaded to fingerprint.
"""

import ast
import hashlib
import importlib.util
from typing import Dict, Iterable, List, Set

# The property each fingerprinted node carries.
CODE_FINGERPRINT_KEY = 'code_fingerprint'
# Top-level names of this project's importable code.
PROJECT_TOP_LEVEL = ('components', 'pipeline', 'pipeline_config')


def _is_project(module_name: str) -> bool:
  return module_name.split('.')[0] in PROJECT_TOP_LEVEL


def _source_path(module_name: str) -> str:
  spec = importlib.util.find_spec(module_name)
  if spec is None or not spec.origin or not spec.origin.endswith('.py'):
    raise ImportError(f'no Python source for project module {module_name!r}')
  return spec.origin


def _module_exists(module_name: str) -> bool:
  try:
    return importlib.util.find_spec(module_name) is not None
  except (ImportError, ValueError):
    return False


def _imported_modules(module_name: str, path: str) -> Set[str]:
  """Project modules that the file imports, anywhere in it."""
  with open(path, encoding='utf-8') as source:  # Project code: a local file.
    tree = ast.parse(source.read(), filename=path)
  package = (module_name if path.endswith('__init__.py')
             else module_name.rpartition('.')[0])
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = package.split('.')
        base = base[:len(base) - node.level + 1]
        parent = '.'.join(base + ([node.module] if node.module else []))
      else:
        parent = node.module or ''
      found.add(parent)
      # `from package import module` imports the submodule.
      found.update(f'{parent}.{alias.name}' for alias in node.names
                   if _is_project(parent) and _module_exists(f'{parent}.{alias.name}'))
  return {name for name in found if name and _is_project(name)}


def _with_parents(module_name: str) -> List[str]:
  parts = module_name.split('.')
  return ['.'.join(parts[:index]) for index in range(1, len(parts) + 1)]


def project_sources(roots: Iterable[str]) -> Dict[str, str]:
  """{module name: source path} of `roots` and the project code they import."""
  pending = [parent for root in roots for parent in _with_parents(root)]
  sources: Dict[str, str] = {}
  while pending:
    name = pending.pop()
    if name in sources:
      continue
    sources[name] = _source_path(name)
    pending.extend(parent for imported in _imported_modules(name, sources[name])
                   for parent in _with_parents(imported))
  return sources


def fingerprint(roots: Iterable[str]) -> str:
  """SHA-256 over the names and bytes of the project code `roots` import."""
  digest = hashlib.sha256()
  for name, path in sorted(project_sources(roots).items()):
    with open(path, 'rb') as source:
      digest.update(name.encode() + b'\0' + source.read() + b'\0')
  return digest.hexdigest()


def attach(node, *roots: str):
  """Adds the fingerprint of `roots`' code to a TFX node; returns the node."""
  node.exec_properties[CODE_FINGERPRINT_KEY] = fingerprint(roots)
  return node
