/**
 * Discovery tags (README.md, "Discovery by tags"; docs/architecture.md): a node advertises its
 * `--local-tags` in peer exchange, and a node with `--connect-tags` links to the nodes that carry
 * any of them. Tags are short lowercase names; this module holds their syntax and bounds, shared by
 * the codec (link/messages.ts), the engine and the option parsers.
 */

/** Tags one node carries (or looks for) at most: the certificate's bound too (crypto/certificate.ts). */
export const MAX_TAGS = 8;
/** Characters in one tag at most. */
export const MAX_TAG_LENGTH = 32;
/** The syntax of one tag. */
export const TAG_PATTERN = /^[a-z0-9._-]{1,32}$/;
export const TAG_SYNTAX = `1..${MAX_TAG_LENGTH} characters from a-z 0-9 . _ -`;

/** Why `tag` is not a valid tag, or undefined when it is. */
export function tagError(tag: string): string | undefined {
  if (TAG_PATTERN.test(tag)) return undefined;
  return `tag ${JSON.stringify(tag)} must be ${TAG_SYNTAX}`;
}

/**
 * Parses a tag list: a comma-separated string (`a,b`) or a list of strings (a config file). Blank
 * items are skipped, duplicates kept once, the result sorted. Returns an error naming the bad tag.
 */
export function parseTagList(raw: unknown): { ok: true; value: string[] } | { ok: false; error: string } {
  const items: unknown[] = Array.isArray(raw) ? raw : [raw];
  const tags = new Set<string>();
  for (const item of items) {
    if (typeof item !== "string") return { ok: false, error: `expected comma-separated tags such as "edge,eu-west" (each ${TAG_SYNTAX})` };
    for (const part of item.split(",")) {
      const tag = part.trim();
      if (tag === "") continue;
      const error = tagError(tag);
      if (error !== undefined) return { ok: false, error };
      tags.add(tag);
    }
  }
  if (tags.size > MAX_TAGS) return { ok: false, error: `${tags.size} tags, at most ${MAX_TAGS}` };
  return { ok: true, value: [...tags].sort() };
}

/** Sorted, without duplicates. */
export function normalizeTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** Does `tags` carry any of `wanted`? */
export function carriesAny(tags: readonly string[] | undefined, wanted: readonly string[]): boolean {
  if (tags === undefined || tags.length === 0 || wanted.length === 0) return false;
  for (const tag of tags) if (wanted.includes(tag)) return true;
  return false;
}

/**
 * In CA mode the certificate's tags are authoritative: of `claimed`, only those the certificate
 * carries count. Returns the kept tags and the refused ones.
 */
export function tagsAllowedByCertificate(claimed: readonly string[], certificateTags: readonly string[]): { kept: string[]; refused: string[] } {
  const allowed = new Set(certificateTags);
  const kept: string[] = [];
  const refused: string[] = [];
  for (const tag of claimed) (allowed.has(tag) ? kept : refused).push(tag);
  return { kept, refused };
}

/**
 * The tags a node advertises. Without a certificate: its `--local-tags`. With one (CA mode): the
 * `--local-tags` its certificate carries (the others are refused: the caller warns), or, when no
 * `--local-tags` were given, the certificate's tags that are valid discovery tags.
 */
export function effectiveLocalTags(localTags: readonly string[] | undefined, certificateTags: readonly string[] | undefined): { tags: string[]; refused: string[] } {
  if (certificateTags === undefined) return { tags: normalizeTags(localTags ?? []), refused: [] };
  if (localTags === undefined) return { tags: normalizeTags(certificateTags.filter((tag) => tagError(tag) === undefined)), refused: [] };
  const { kept, refused } = tagsAllowedByCertificate(normalizeTags(localTags), certificateTags);
  return { tags: kept, refused };
}

/**
 * A tagged peer heard of through others is relayed on in peer exchange while some node linked to
 * it vouched for it within this long (entries carry their age; ages only grow along relays).
 */
export const TAG_ENTRY_MAX_AGE_MS = 60_000;
/** Relayed tagged peers per peer exchange at most (the freshest), besides the sender's neighbours. */
export const MAX_RELAYED_TAGGED_PEERS = 64;
