"""The evaluate stage: deciding listings against a checked policy set.

``semantics`` states the rules of a decision once (value predicates, the window test,
the effect order, the penalty step, ``combine``); ``values`` reads listings and instants;
``reference`` is the plain walk over the model, ``compiled`` the fast evaluator that binds
literals into the same predicates; ``explain`` builds the trace of a decision;
``outcome`` holds the plain data a decision is (``Decision``, ``InputError``); ``policies``
is the ``Policies`` facade that ``dsl.load`` returns."""
