// src/spec owns the workflow and service file format (SPEC §2): parsing YAML
// into the typed model, validating it (alone and as a set of files), and the
// `{{ }}` templates and parameters that commands are rendered with.

export * from './model.js';
export { parseDuration, parseMemory, formatDuration } from './duration.js';
export { parseDefinitionSource, parseDefinitionDocument, loadDefinitionFiles, loadDefinitions, type ParseResult, type DefinitionSource, type LoadedDefinitions } from './parse.js';
export { validateWorkflowDocument, validateServiceDocument, type ValidateContext } from './validate.js';
export { validateDefinitionSet, qualifiedName, resolveWorkflowRef, type DefinitionSetOptions } from './validate-set.js';
export {
  TemplateError, templateRefs, shellQuote, renderShell, renderLiteral, renderArgv, paramEnv, type TemplateRef,
} from './template.js';
export { resolveParams } from './params.js';
export { parseHandlerRef } from './command.js';
export {
  DEFAULT_NAMESPACE, DEFAULT_QUEUE, DEFAULT_RETRIES, DEFAULT_RESTART, DEFAULT_TIMEZONE,
} from './build.js';
export { TASK_ID, WORKFLOW_EVENTS, SERVICE_EVENTS } from './schema.js';
export { formatDocPath, type Locate, type Position, type DocPath } from './locate.js';
