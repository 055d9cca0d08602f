import { actionsResource } from './actions.ts';
import { itemResource, ticketTypeResource } from './catalogue.ts';
import { clientResource, siteResource, usersResource } from './customers.ts';
import { outcomeResource } from './outcomes.ts';
import type { ResourceDefinition } from './resource.ts';
import { softwareLicenceResource } from './software-licence.ts';
import { ticketsResource } from './tickets.ts';

export type { RequestContext, ResourceDefinition } from './resource.ts';

const RESOURCES: readonly ResourceDefinition[] = [
  clientResource,
  siteResource,
  usersResource,
  itemResource,
  ticketTypeResource,
  softwareLicenceResource,
  ticketsResource,
  actionsResource,
  outcomeResource,
];

const BY_LOWER_CASE_NAME = new Map(
  RESOURCES.map((resource) => [resource.name.toLowerCase(), resource]),
);

/** Lower-case names of every emulated resource, e.g. `softwarelicence`. */
export const RESOURCE_NAMES: readonly string[] = [...BY_LOWER_CASE_NAME.keys()];

/** Finds a resource by name, ignoring case as HaloPSA's routing does. */
export function findResource(name: string): ResourceDefinition | undefined {
  return BY_LOWER_CASE_NAME.get(name.toLowerCase());
}
