/** The package's version, read from the nearest `package.json` named "skein" above this file. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_NAME = "skein";

/** Walks up from `startDir` to the first package.json whose name is "skein"; undefined if none. */
export function findPackageJson(startDir: string): { path: string; version: string } | undefined {
  let dir = startDir;
  for (;;) {
    const candidate = path.join(dir, "package.json");
    try {
      const json = JSON.parse(readFileSync(candidate, "utf8")) as { name?: unknown; version?: unknown };
      if (json.name === PACKAGE_NAME && typeof json.version === "string") return { path: candidate, version: json.version };
    } catch {
      // Missing or unreadable: keep walking up.
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= findPackageJson(path.dirname(fileURLToPath(import.meta.url)))?.version ?? "0.0.0-unknown";
  return cached;
}

/** The package's root folder (where package.json and web/ live), or undefined. */
export function packageRoot(): string | undefined {
  const found = findPackageJson(path.dirname(fileURLToPath(import.meta.url)));
  return found === undefined ? undefined : path.dirname(found.path);
}
