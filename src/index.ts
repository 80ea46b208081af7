// The `gantry` package: defineWorkflow (workflows in TypeScript), the typed API
// client, the workflow model and the store types, for programs that drive Gantry.
export {
  defineWorkflow, type Workflow, type AnyWorkflow, type WorkflowDefinition, type TaskDefinition, type TaskDefaults, type StepDefinition,
  type ParamDefinition, type ParamValue, type ParamValues, type ScheduleDefinition, type RetriesDefinition,
  type ResourcesDefinition, type WorkflowHandler, type WorkflowHandlerContext,
} from './sdk/defineWorkflow.js';
export { GantryClient, ApiError, UnreachableError, type RunWithJobs, type JobWithAttempts, type WorkflowSummary, type RunRequest } from './client/client.js';
export type { WhoAmI } from './client/client.js';
export type { ApiToken, Role, SecretInfo } from './store/types.js';
export type { Run, Job, Attempt, JobState, RunState, StoreEvent, StoredLogLine, WorkerRow, DeferredRun, DeferredState } from './store/types.js';
export type { ScheduleSummary } from './server/schedules.js';
export type { HandlerContext } from './worker/runHandler.js';
export type { TaskProgress } from './store/taskProgress.js';
export * from './spec/index.js';
