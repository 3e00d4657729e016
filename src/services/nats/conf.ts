/**
 * The NATS configuration format (nats-server's conf/lex.go and conf/parse.go), pure:
 *
 *   # comments with # or //
 *   port: 4222                 key: value, key = value, or key value
 *   host = "0.0.0.0"           "double quoted" (escapes \t \n \r \" \\ \xHH) or 'single quoted' (raw)
 *   max_payload: 1MB           integers with suffixes k=1000 kb=1024 m mb g gb; floats; true/false/yes/no/on/off
 *   listen: 127.0.0.1:4222     an unquoted IP address (and port) is a string
 *   authorization { … }        maps, with or without a separator before "{"
 *   routes [ a, b ]            arrays, comma or newline separated
 *   token: $SECRET             variables: a key defined earlier in an enclosing map, else the environment
 *
 * Values end at a newline, ";" or ","; in maps also "}", in arrays "]". `include` is refused with a
 * clear error (not supported). Errors name the line and say what was expected.
 */

export type ConfValue = string | number | boolean | Date | ConfValue[] | ConfMap;
export interface ConfMap {
  [key: string]: ConfValue;
}

export class ConfError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = "ConfError";
  }
}

const SUFFIX: Record<string, number> = { k: 1000, kb: 1024, m: 1_000_000, mb: 1024 * 1024, g: 1_000_000_000, gb: 1024 * 1024 * 1024 };

function isBlank(c: string): boolean {
  return c === " " || c === "\t";
}

function isNewline(c: string): boolean {
  return c === "\n" || c === "\r";
}

function isSpace(c: string): boolean {
  return isBlank(c) || isNewline(c) || c === "\f" || c === "\v";
}

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

class ConfParser {
  private pos = 0;
  private line = 1;
  private readonly scopes: ConfMap[] = [];
  /** Keys read through $name (they are variables, not settings). */
  readonly used = new Set<string>();

  constructor(
    private readonly text: string,
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {}

  parse(): ConfMap {
    const root: ConfMap = {};
    this.scopes.push(root);
    this.skipSpaceAndComments();
    // A whole file may be wrapped in { } (nats-server skips a top-level "{").
    let wrapped = false;
    if (this.peek() === "{") {
      wrapped = true;
      this.next();
    }
    for (;;) {
      this.skipSpaceAndComments();
      const c = this.peek();
      if (c === "") break;
      if (c === "}" && wrapped) {
        this.next();
        this.skipSpaceAndComments();
        if (this.peek() !== "") throw this.error(`unexpected ${JSON.stringify(this.peek())} after the closing "}"`);
        break;
      }
      if (c === ";" || c === ",") {
        this.next();
        continue;
      }
      if (c === "}" || c === "]") throw this.error(`unexpected ${JSON.stringify(c)}: nothing is open here`);
      this.entry(root, "top");
      this.valueEnd("top");
    }
    return root;
  }

  private peek(offset = 0): string {
    return this.text.charAt(this.pos + offset);
  }

  private next(): string {
    const c = this.text.charAt(this.pos);
    if (c === "") return c;
    this.pos++;
    if (c === "\n") this.line++;
    return c;
  }

  private error(reason: string): ConfError {
    return new ConfError(this.line, reason);
  }

  private skipComment(): boolean {
    if (this.peek() === "#" || (this.peek() === "/" && this.peek(1) === "/")) {
      while (this.peek() !== "" && !isNewline(this.peek())) this.next();
      return true;
    }
    return false;
  }

  private skipSpaceAndComments(): void {
    for (;;) {
      if (isSpace(this.peek())) this.next();
      else if (!this.skipComment()) return;
    }
  }

  /** key [sep] value, stored in `map`. */
  private entry(map: ConfMap, where: "top" | "map"): void {
    const keyLine = this.line;
    const key = this.key();
    if (key.toLowerCase() === "include" && !key.startsWith("\"")) {
      throw new ConfError(keyLine, `"include" is not supported by skein; put the included settings in this file`);
    }
    // Whitespace (even newlines) may separate a key from its separator.
    while (isSpace(this.peek())) this.next();
    let separated = false;
    if (this.peek() === "=" || this.peek() === ":") {
      this.next();
      separated = true;
    }
    while (isBlank(this.peek())) this.next();
    if (isNewline(this.peek()) || this.peek() === "") {
      if (separated || this.peek() === "") throw this.error(`expected a value for "${key}" but found ${this.peek() === "" ? "the end of the file" : "a new line"}`);
    }
    map[key] = this.value(where === "top" ? "top" : "map");
  }

  private key(): string {
    const c = this.peek();
    if (c === "=" || c === ":") throw this.error(`unexpected key separator ${JSON.stringify(c)}: expected a key`);
    if (c === "\"" || c === "'") {
      this.next();
      let key = "";
      while (this.peek() !== c) {
        if (this.peek() === "") throw this.error("unterminated quoted key");
        key += this.next();
      }
      this.next();
      return key;
    }
    let key = "";
    while (this.peek() !== "" && !isSpace(this.peek()) && this.peek() !== "=" && this.peek() !== ":") {
      if (this.peek() === "{" || this.peek() === "[") break;
      key += this.next();
    }
    if (key === "") throw this.error(`expected a key, found ${JSON.stringify(this.peek())}`);
    return key;
  }

  private value(context: "top" | "map" | "array"): ConfValue {
    const c = this.peek();
    if (c === "[") {
      this.next();
      return this.array();
    }
    if (c === "{") {
      this.next();
      return this.map();
    }
    if (c === "\"") {
      this.next();
      return this.doubleQuoted();
    }
    if (c === "'") {
      this.next();
      let out = "";
      while (this.peek() !== "'") {
        if (this.peek() === "") throw this.error("unterminated 'string'");
        out += this.next();
      }
      this.next();
      return out;
    }
    if (c === "(") {
      this.next();
      return this.block();
    }
    if (c === "-" || isDigit(c)) return this.numberLike();
    if (c === ".") throw this.error("floats must start with a digit");
    return this.unquoted(context);
  }

  private doubleQuoted(): string {
    let out = "";
    for (;;) {
      const c = this.next();
      if (c === "") throw this.error("unterminated \"string\"");
      if (c === "\"") return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.next();
      switch (e) {
        case "t":
          out += "\t";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "\"":
          out += "\"";
          break;
        case "\\":
          out += "\\";
          break;
        case "x": {
          const hex = this.next() + this.next();
          if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw this.error(`expected two hexadecimal digits after \\x, got ${JSON.stringify(hex)}`);
          out += String.fromCharCode(parseInt(hex, 16));
          break;
        }
        default:
          throw this.error(`invalid escape ${JSON.stringify(`\\${e}`)}; allowed: \\xXX \\t \\n \\r \\" \\\\`);
      }
    }
  }

  /** `( … )` up to a ")" alone on its line. */
  private block(): string {
    const start = this.pos;
    for (;;) {
      const c = this.next();
      if (c === "") throw this.error(`unterminated block: expected ")" alone on a line`);
      if (c === "\n" && this.peek() === ")" && (this.peek(1) === "\n" || this.peek(1) === "")) {
        const body = this.text.slice(start, this.pos - 1);
        this.next();
        return body;
      }
    }
  }

  private numberLike(): ConfValue {
    const startLine = this.line;
    let raw = "";
    if (this.peek() === "-") raw += this.next();
    if (!isDigit(this.peek())) throw this.error(`expected a digit after "-"`);
    while (isDigit(this.peek())) raw += this.next();
    const c = this.peek();
    if (c === "-" && raw.length === 4) {
      // ISO 8601 Zulu datetime: YYYY-MM-DDTHH:MM:SSZ
      let date = raw;
      for (let i = 0; i < 16; i++) date += this.next();
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(date)) throw new ConfError(startLine, `expected a datetime such as 2024-01-02T03:04:05Z, got ${JSON.stringify(date)}`);
      return new Date(date);
    }
    if (c === ".") {
      raw += this.next();
      if (!isDigit(this.peek())) throw this.error(`floats need a digit after "."`);
      while (isDigit(this.peek())) raw += this.next();
      if (this.peek() === ".") {
        // An IP address (maybe with a port): a string.
        while (isDigit(this.peek()) || this.peek() === "." || this.peek() === ":" || this.peek() === "-") raw += this.next();
        return raw;
      }
      return Number(raw);
    }
    const lower = c.toLowerCase();
    if (lower === "k" || lower === "m" || lower === "g") {
      let suffix = this.next().toLowerCase();
      if (this.peek().toLowerCase() === "b") suffix += this.next().toLowerCase();
      const value = Number(raw) * SUFFIX[suffix]!;
      if (!Number.isSafeInteger(value)) throw new ConfError(startLine, `integer ${raw}${suffix} is out of range`);
      return value;
    }
    const value = Number(raw);
    if (!Number.isSafeInteger(value)) throw new ConfError(startLine, `integer ${raw} is out of range`);
    return value;
  }

  private unquoted(_context: "top" | "map" | "array"): ConfValue {
    let raw = "";
    for (;;) {
      const c = this.peek();
      if (c === "" || isNewline(c) || isBlank(c) || c === ";" || c === ",") break;
      // As nats-server's lexer: "]" and "}" end an unquoted value wherever it is.
      if (c === "]" || c === "}") break;
      if (c === "\\") throw this.error("escapes are only allowed in double-quoted strings");
      raw += this.next();
    }
    if (raw === "") throw this.error(`expected a value, found ${JSON.stringify(this.peek())}`);
    const lower = raw.toLowerCase();
    if (lower === "true" || lower === "yes" || lower === "on") return true;
    if (lower === "false" || lower === "no" || lower === "off") return false;
    if (raw.startsWith("$")) return this.variable(raw.slice(1));
    return raw;
  }

  private variable(name: string): ConfValue {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const scope = this.scopes[i]!;
      if (Object.prototype.hasOwnProperty.call(scope, name)) {
        this.used.add(name);
        return scope[name]!;
      }
    }
    const fromEnv = this.env[name];
    if (fromEnv !== undefined) {
      // Environment values are parsed as a value would be ("1MB" is a number).
      const parsed = new ConfParser(`pk=${fromEnv}`, {}).parse();
      return parsed.pk!;
    }
    throw this.error(`variable $${name} is not defined (neither earlier in the file nor in the environment)`);
  }

  private array(): ConfValue[] {
    const out: ConfValue[] = [];
    for (;;) {
      this.skipSpaceAndComments();
      const c = this.peek();
      if (c === "") throw this.error(`unterminated array: expected "]"`);
      if (c === "]") {
        this.next();
        return out;
      }
      if (c === ",") throw this.error(`unexpected "," in an array`);
      out.push(this.value("array"));
      // After a value: blanks, a comment, then "," or a newline, or "]".
      while (isBlank(this.peek())) this.next();
      this.skipComment();
      const end = this.peek();
      if (end === "," || isNewline(end)) this.next();
      else if (end !== "]") throw this.error(`expected "," or "]" after an array value, found ${JSON.stringify(end)}`);
    }
  }

  private map(): ConfMap {
    const out: ConfMap = {};
    this.scopes.push(out);
    for (;;) {
      this.skipSpaceAndComments();
      const c = this.peek();
      if (c === "") throw this.error(`unterminated map: expected "}"`);
      if (c === "}") {
        this.next();
        this.scopes.pop();
        return out;
      }
      if (c === "," || c === ";") {
        this.next();
        continue;
      }
      this.entry(out, "map");
      this.valueEnd("map");
    }
  }

  /** After a top-level or map value: blanks, a comment, then a newline, ";", "," or the closing "}". */
  private valueEnd(where: "top" | "map"): void {
    while (isBlank(this.peek())) this.next();
    this.skipComment();
    const c = this.peek();
    if (c === "" || isNewline(c) || c === ";" || c === ",") {
      if (c !== "") this.next();
      return;
    }
    if (c === "}") return;
    throw this.error(
      where === "top"
        ? `expected a new line, ";" or a comment after a value, found ${JSON.stringify(c)}`
        : `expected a new line, ",", ";" or "}" after a value, found ${JSON.stringify(c)}`,
    );
  }
}

/** Parses NATS configuration text. Throws ConfError (with the line) on bad input. */
export function parseNatsConf(text: string, env: Readonly<Record<string, string | undefined>> = {}): ConfMap {
  return new ConfParser(text, env).parse();
}

/** Like parseNatsConf, and also names the keys used as $variables (not settings: no unknown-key warning). */
export function parseNatsConfDetailed(text: string, env: Readonly<Record<string, string | undefined>> = {}): { conf: ConfMap; variables: Set<string> } {
  const parser = new ConfParser(text, env);
  const conf = parser.parse();
  return { conf, variables: parser.used };
}
