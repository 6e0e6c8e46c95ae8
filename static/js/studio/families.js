// A track's family guessed from its name, for the console's colours: a cheap word match, nothing more.
// Order matters: "Bass Drum" is a drum, "Synth Bass" a bass.
const FAMILIES = [
  ['drums', /kick|snare|\bhats?\b|hi-?hat|\btoms?\b|overhead|\boh\b|cymbal|\bride\b|crash|drum|perc|clap|shaker|tamb|conga|bongo|\broom\b/i],
  ['bass', /bass|\bsub\b|808/i],
  ['vocals', /vox|vocal|\bvoc\b|\bbvs?\b|choir|\bsing|harmon|adlib/i],
  ['guitars', /gtr|guitar|acoustic|banjo|mandolin|ukulele/i],
  ['keys', /piano|keys|organ|rhodes|wurli|synth|\bpads?\b|clav|\barp/i],
  ['strings', /string|violin|viola|cello|brass|horn|trumpet|trombone|\bsax|flute|clarinet|orch/i],
  ['fx', /\bfx\b|sfx|riser|noise|sweep|impact|ambien/i],
];

/** The family of a track name ("drums", "bass", ...), or "other". */
export function familyOf(name) {
  const found = FAMILIES.find(([, pattern]) => pattern.test(name));
  return found ? found[0] : 'other';
}
