/**
 * `.dockerignore` as Docker's build context loader applies it (moby/patternmatcher):
 * one pattern a line, `#` comments, `!` re-includes, `*` and `?` within one path
 * segment, `**` across segments; a pattern that matches a folder matches everything in
 * it; the last pattern that matches a path decides. Character classes are not
 * supported here (they throw), so .dockerignore must not use them.
 */

interface Pattern {
  exclude: boolean;
  re: RegExp;
  text: string;
}

function toRegExp(pattern: string): RegExp {
  if (/[[\]\\]/.test(pattern)) throw new Error(`.dockerignore: character classes and escapes are not supported here: ${pattern}`);
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else {
        re += '.*';
      }
    } else if (c === '*') {
      re += '[^/]*';
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

/** Parses the text of a .dockerignore file. */
export function parseDockerignore(text: string): Pattern[] {
  const out: Pattern[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const exclude = !line.startsWith('!');
    if (!exclude) line = line.slice(1).trim();
    // Docker cleans the pattern: no leading "/" or "./", no trailing "/".
    line = line.replace(/^\/+/, '').replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (line === '') continue;
    out.push({ exclude, re: toRegExp(line), text: raw });
  }
  return out;
}

/** Whether `path` (relative to the context, `/`-separated) is left out of the build context. */
export function isIgnored(patterns: readonly Pattern[], path: string): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const p of patterns) {
    if (candidates.some((c) => p.re.test(c))) ignored = p.exclude;
  }
  return ignored;
}
