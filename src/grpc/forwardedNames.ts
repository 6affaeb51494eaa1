// The names a trusted proxy's forwarded-identity header carries; whether to believe them is the
// policy's question (auth/gatekeeper.ts).

/**
 * The names in a forwarded-identity header. Envoy's `x-forwarded-client-cert` carries elements
 * like `By=…;Hash=…;Subject="CN=alice,O=x";URI=spiffe://a/b;DNS=alice.example`, several of them
 * comma-separated when more than one proxy appended; the last element describes the client of the
 * proxy that talks to us. Any other header's value is taken as one name.
 */
export function forwardedNames(header: string, value: string): string[] {
  if (header.toLowerCase() !== "x-forwarded-client-cert") {
    const name = value.trim();
    return name ? [name] : [];
  }
  const elements = splitOutsideQuotes(value, ",");
  const last = elements[elements.length - 1] ?? "";
  const names: string[] = [];
  for (const pair of splitOutsideQuotes(last, ";")) {
    const eq = pair.indexOf("=");
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const raw = pair.slice(eq + 1).trim();
    const val = raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replace(/\\"/g, '"') : raw;
    if (key === "uri" || key === "dns") names.push(val);
    if (key === "subject") {
      const cn = /(?:^|,)\s*CN=((?:\\,|[^,])*)/.exec(val);
      if (cn?.[1]) names.push(cn[1].replace(/\\,/g, ","));
    }
  }
  return names.filter((n) => n.length > 0);
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\" && quoted && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === separator && !quoted) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}
