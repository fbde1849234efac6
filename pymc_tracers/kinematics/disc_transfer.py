def disc_transfer_problem(components, numerics):
    return "not built yet"


DiscTransferRenderer = None
