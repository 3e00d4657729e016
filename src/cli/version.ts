/** The package's version (runtime/version.ts reads it; the CLI shows it). */
export { findPackageJson, packageVersion } from "../runtime/version.js";
