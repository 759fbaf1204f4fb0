// onnxruntime's error messages, made fit for a client: its internal source locations
// ("/onnxruntime_src/.../reshape_helper.h:84"), C++ signatures ("onnxruntime::ReshapeHelper::ReshapeHelper(...)") and
// failed-assertion expressions go; the chain of nodes is cut to the node that failed; the reason stays.

/**
 * A source location (a path ending in a C/C++ file and a line number), then the function it is in, as onnxruntime
 * prints them: an optional return type and a qualified name whose parameter list is balanced in code below.
 */
const SOURCE_LOCATION =
  /(?:\/[^\s/:]+)*\/?[\w.+-]+\.(?:h|hh|hpp|c|cc|cpp|cxx|cu|inc):\d+(?::\d+)?\s*(?:(?:const\s+)?[\w:<>]+[*&]*\s+(?=(?:[\w~]+::)+[\w~<>]+\())?/g;
/** A C++ qualified name followed by its parameter list. */
const QUALIFIED_CALL = /(?:[\w~]+::)+[\w~<>]+(?=\()/g;
/** "Non-zero status code returned while running X node. Name:'n' Status Message: " (nested for If/Loop subgraphs). */
const NODE_PREFIX = /Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: /g;

/** Removes `name(...)` calls of qualified C++ names, with their balanced parameter lists. */
function dropSignatures(text: string): string {
  let out = '';
  let last = 0;
  for (const m of text.matchAll(QUALIFIED_CALL)) {
    const start = m.index;
    if (start < last) continue;
    let depth = 0;
    let end = start + m[0].length;
    for (; end < text.length; end++) {
      if (text[end] === '(') depth++;
      else if (text[end] === ')' && --depth === 0) break;
    }
    if (depth !== 0) continue; // unbalanced: leave the text as it is
    out += text.slice(last, start);
    last = end + 1;
    while (text[last] === ' ') last++;
  }
  return out + text.slice(last);
}

/** The client-facing form of an onnxruntime message. */
export function ortMessage(raw: string): string {
  let text = raw.trim();
  // Only the innermost node says what failed; the If/Loop nodes around it add nothing for the client.
  let node: { op: string; name: string } | undefined;
  let rest = 0;
  for (const m of text.matchAll(NODE_PREFIX)) {
    node = { op: m[1], name: m[2] };
    rest = m.index + m[0].length;
  }
  if (node) text = text.slice(rest);
  text = dropSignatures(text.replace(SOURCE_LOCATION, ''));
  // ORT_ENFORCE's "<expression> was false. <reason>": the reason is what a client can act on.
  const enforced = /^(.*?) was false\.\s+(\S.*)$/s.exec(text);
  if (enforced && /[=<>!&|]/.test(enforced[1])) text = enforced[2];
  text = text.replace(/\s+/g, ' ').trim();
  return node ? `${node.op} node "${node.name}": ${text}` : text;
}
