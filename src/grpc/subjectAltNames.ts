// The subject alternative names of a verified client certificate, as Node reports them.

/**
 * Node's `subjectaltname` ("DNS:a.example, URI:spiffe://x/y, IP Address:10.0.0.1, email:a@b") as
 * bare values. Entries are joined by ", "; a value with a comma, quote, backslash, apostrophe or
 * control character is written as a JSON string (`URI:"spiffe://x/a\u002c b"`), so a comma
 * inside quotes never separates entries: otherwise a certificate's one URI SAN could carry
 * ", DNS:admin" and pass for a second name. Text that does not parse as that format yields no
 * names at all rather than a guess.
 */
export function parseSubjectAltNames(text: string): string[] {
  const names: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(":", i);
    if (colon < 0 || /[",]/.test(text.slice(i, colon))) return [];
    let end: number;
    let value: string;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (end >= text.length) return [];
      end++;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        return [];
      }
    } else {
      const comma = text.indexOf(",", colon);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end).trim();
    }
    if (end < text.length) {
      if (text[end] !== ",") return [];
      end++;
      while (text[end] === " ") end++;
    }
    if (value.length > 0) names.push(value);
    i = end;
  }
  return names;
}
