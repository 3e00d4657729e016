/** Plain-text tables and number formats for the terminal. Pure. */

export interface Column {
  header: string;
  align?: "left" | "right";
}

/**
 * Lays out rows under headers, each column as wide as its widest cell, two spaces apart, with no
 * trailing spaces. Returns the lines (header first).
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const widths = columns.map((column, index) => Math.max(column.header.length, ...rows.map((row) => (row[index] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    columns
      .map((column, index) => {
        const cell = cells[index] ?? "";
        const width = widths[index]!;
        return column.align === "right" ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...rows.map(line)];
}

/** A number with fixed decimals, or "-" when unknown. */
export function formatNumber(value: number | undefined | null, decimals = 1): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return "-";
  return value.toFixed(decimals);
}

/** A 0..1 fraction as a percentage with one decimal, or "-". */
export function formatPercent(fraction: number | undefined | null): string {
  if (fraction === undefined || fraction === null || !Number.isFinite(fraction)) return "-";
  return (fraction * 100).toFixed(1);
}

/** `3723000` → `1h 02m 03s`; `45000` → `45s`; `90061000` → `1d 01h 01m`. */
export function formatDuration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms < 0) return "-";
  const totalS = Math.floor(ms / 1000);
  const days = Math.floor(totalS / 86_400);
  const hours = Math.floor((totalS % 86_400) / 3600);
  const minutes = Math.floor((totalS % 3600) / 60);
  const seconds = totalS % 60;
  const pad = (value: number): string => String(value).padStart(2, "0");
  if (days > 0) return `${days}d ${pad(hours)}h ${pad(minutes)}m`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  if (minutes > 0) return `${minutes}m ${pad(seconds)}s`;
  return `${seconds}s`;
}
