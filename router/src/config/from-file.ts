// Reads a config file (YAML or JSON; YAML is a superset, so one parser serves both).
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

/** Parses config text; throws an Error with the parser's position when the text is not YAML/JSON. */
export function parseConfigText(text: string): unknown {
  return parse(text, { prettyErrors: true });
}

export async function readConfigFile(path: string): Promise<{ text: string; doc: unknown }> {
  const text = await readFile(path, 'utf8');
  return { text, doc: parseConfigText(text) };
}
