// The error registry and the error table of docs/reference/errors.md must agree, code for code and status for status.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, hearthError } from '../../core/index.ts';

function documentedErrorTable(): Map<string, number> {
  const page = fs.readFileSync(new URL('../../docs/reference/errors.md', import.meta.url), 'utf8');
  const section = page.split(/^## Codes\s*$/m)[1]?.split(/^## /m)[0];
  if (!section) throw new Error('docs/reference/errors.md has no "## Codes" section');
  const rows = new Map<string, number>();
  for (const line of section.split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
    if (m) rows.set(m[1], Number(m[2]));
  }
  return rows;
}

describe('error registry', () => {
  it("docs/reference/errors.md's table lists exactly the registry's codes with the same statuses", () => {
    const table = documentedErrorTable();
    const registry = new Map(Object.entries(ERROR_CODES).map(([code, e]) => [code, e.status as number]));
    expect([...table.keys()].sort()).toEqual([...registry.keys()].sort());
    for (const [code, status] of registry) expect(table.get(code), code).toBe(status);
  });

  it('every code has a 4xx or 5xx status and a doc line', () => {
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      expect(e.status >= 400 && e.status < 600, code).toBe(true);
      expect(e.doc.length, code).toBeGreaterThan(10);
    }
  });

  it('a HearthError serialises to { error, code } with its status', () => {
    const e = hearthError('MODEL_TOO_LARGE', 'too big');
    expect(e.statusCode).toBe(413);
    expect(JSON.parse(JSON.stringify(e))).toEqual({ error: 'too big', code: 'MODEL_TOO_LARGE' });
  });
});
